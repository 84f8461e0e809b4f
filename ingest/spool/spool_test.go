package spool_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/meterd/meterd/ingest/spool"
)

func open(t *testing.T, cfg spool.Config) *spool.Spool {
	t.Helper()
	s, err := spool.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func drain(t *testing.T, s *spool.Spool) []spool.Record {
	t.Helper()
	var out []spool.Record
	for {
		r, ok, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, r)
	}
}

func TestSpoolOrderCommitAndReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := spool.Config{Dir: dir, SegmentBytes: 100, NoSync: true}
	s := open(t, cfg)
	for i := range 20 {
		if err := s.Append([]byte(fmt.Sprintf("record-%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	recs := drain(t, s)
	if len(recs) != 20 {
		t.Fatalf("read %d records", len(recs))
	}
	for i, r := range recs {
		if string(r.Data) != fmt.Sprintf("record-%02d", i) {
			t.Fatalf("record %d = %q", i, r.Data)
		}
	}
	// Commit out of order: 1..9 first, then 0; 10..19 stay uncommitted.
	for i := 1; i < 10; i++ {
		if err := s.Commit(recs[i].Pos); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(recs[0].Pos); err != nil {
		t.Fatal(err)
	}
	if s.Empty() || s.OldestAge() <= 0 {
		t.Fatal("spool empty with 10 uncommitted records")
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, cfg)
	recs = drain(t, s2)
	if len(recs) != 10 || string(recs[0].Data) != "record-10" {
		t.Fatalf("after reopen: %d records, first %q", len(recs), recs[0].Data)
	}
	for _, r := range recs {
		if err := s2.Commit(r.Pos); err != nil {
			t.Fatal(err)
		}
	}
	if !s2.Empty() {
		t.Fatalf("%d bytes left after committing everything", s2.Bytes())
	}
	after, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(after) >= len(segs) || len(after) > 1 {
		t.Fatalf("segments not deleted: %d before, %d after", len(segs), len(after))
	}
}

func TestSpoolTornTailAndFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := spool.Config{Dir: dir, MaxBytes: 200, NoSync: true}
	s := open(t, cfg)
	if err := s.Append([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(make([]byte, 500)); !errors.Is(err, spool.ErrFull) {
		t.Fatalf("oversized append = %v, want ErrFull", err)
	}
	_ = s.Close()
	// A crash mid-write leaves half a record.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{50, 0, 0, 0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	s2 := open(t, cfg)
	recs := drain(t, s2)
	if len(recs) != 2 || string(recs[1].Data) != "two" {
		t.Fatalf("after torn tail: %d records", len(recs))
	}
	if err := s2.Append([]byte("three")); err != nil {
		t.Fatal(err)
	}
	s2.Rewind()
	if recs := drain(t, s2); len(recs) != 3 || string(recs[2].Data) != "three" {
		t.Fatalf("after rewind: %d records", len(recs))
	}
}
