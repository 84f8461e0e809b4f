package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrFull is returned by Append when the spool holds MaxBytes.
var ErrFull = errors.New("spool: full")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("spool: closed")

// Config configures a spool. Zero values take the defaults.
type Config struct {
	// Dir holds the segments and the cursor. Required.
	Dir string
	// MaxBytes bounds the bytes on disk not yet committed. Default 256 MiB.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment starts. Default 8 MiB.
	SegmentBytes int64
	// NoSync skips the fsync after each append (tests and benchmarks).
	NoSync bool
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("spool: Dir is required")
	}
	if c.MaxBytes < 0 || c.SegmentBytes < 0 {
		return errors.New("spool: sizes must not be negative")
	}
	return nil
}

const headerSize = 16 // length u32, crc u32, append time i64 (unix ns)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Pos is where a record sits; Commit takes it.
type Pos struct {
	Seg  uint64
	Off  int64
	next int64 // offset just past the record
}

// Record is one record read back.
type Record struct {
	Pos      Pos
	Data     []byte
	Appended time.Time
}

// Spool is safe for concurrent use by one appender and one reader.
type Spool struct {
	cfg Config

	mu      sync.Mutex
	closed  bool
	segs    []uint64 // existing segment ids, ascending
	sizes   map[uint64]int64
	w       *os.File // current write segment
	wseg    uint64
	cursor  Pos   // first uncommitted record
	read    Pos   // next record Next returns
	pending []Pos // records handed out by Next, not yet committed, in order
	done    map[Pos]bool
	wake    chan struct{}
}

// Open opens (or creates) the spool in cfg.Dir, repairing a torn tail.
func Open(cfg Config) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 256 << 20
	}
	if cfg.SegmentBytes == 0 {
		cfg.SegmentBytes = 8 << 20
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{cfg: cfg, sizes: map[uint64]int64{}, done: map[Pos]bool{}, wake: make(chan struct{})}
	ents, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		s.segs = append(s.segs, id)
	}
	slices.Sort(s.segs)
	if c, err := s.loadCursor(); err == nil {
		s.cursor = c
	} else if len(s.segs) > 0 {
		s.cursor = Pos{Seg: s.segs[0]}
	}
	// Drop segments before the cursor (a crash between the cursor write
	// and the delete leaves them behind).
	for len(s.segs) > 0 && s.segs[0] < s.cursor.Seg {
		_ = os.Remove(s.segPath(s.segs[0]))
		s.segs = s.segs[1:]
	}
	for _, id := range s.segs {
		size, err := s.repair(id)
		if err != nil {
			return nil, err
		}
		s.sizes[id] = size
	}
	if len(s.segs) == 0 {
		s.cursor = Pos{Seg: 1}
		if err := s.newSegment(1); err != nil {
			return nil, err
		}
	} else {
		last := s.segs[len(s.segs)-1]
		f, err := os.OpenFile(s.segPath(last), os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		s.w, s.wseg = f, last
	}
	if s.cursor.Seg < s.segs[0] {
		s.cursor = Pos{Seg: s.segs[0]}
	}
	if size, ok := s.sizes[s.cursor.Seg]; !ok {
		s.cursor = Pos{Seg: s.segs[0]}
	} else if s.cursor.Off > size {
		s.cursor.Off = size // the tail the cursor pointed into was torn
	}
	s.read = s.cursor
	return s, nil
}

func (s *Spool) segPath(id uint64) string {
	return filepath.Join(s.cfg.Dir, fmt.Sprintf("%020d.seg", id))
}

func (s *Spool) cursorPath() string { return filepath.Join(s.cfg.Dir, "cursor") }

func (s *Spool) loadCursor() (Pos, error) {
	b, err := os.ReadFile(s.cursorPath())
	if err != nil {
		return Pos{}, err
	}
	var p Pos
	if _, err := fmt.Sscanf(string(b), "%d %d", &p.Seg, &p.Off); err != nil {
		return Pos{}, err
	}
	return p, nil
}

// repair scans a segment and truncates it after its last whole record.
func (s *Spool) repair(id uint64) (int64, error) {
	f, err := os.OpenFile(s.segPath(id), os.O_RDWR, 0o644)
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	var off int64
	hdr := make([]byte, headerSize)
	for {
		if _, err := f.ReadAt(hdr, off); err != nil {
			break
		}
		n := int64(binary.LittleEndian.Uint32(hdr))
		data := make([]byte, n)
		if _, err := f.ReadAt(data, off+headerSize); err != nil {
			break
		}
		if crc32.Checksum(data, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			break
		}
		off += headerSize + n
	}
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	if st.Size() != off {
		if err := f.Truncate(off); err != nil {
			return 0, fmt.Errorf("spool: repair %d: %w", id, err)
		}
	}
	return off, nil
}

func (s *Spool) newSegment(id uint64) error {
	f, err := os.OpenFile(s.segPath(id), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if s.w != nil {
		_ = s.w.Close()
	}
	s.w, s.wseg = f, id
	s.segs = append(s.segs, id)
	s.sizes[id] = 0
	return nil
}

// Append writes a record and, unless NoSync, syncs it to disk before
// returning. It returns ErrFull when the uncommitted bytes would exceed
// MaxBytes.
func (s *Spool) Append(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	size := int64(headerSize + len(data))
	if s.bytesLocked()+size > s.cfg.MaxBytes {
		return ErrFull
	}
	if s.sizes[s.wseg] > 0 && s.sizes[s.wseg]+size > s.cfg.SegmentBytes {
		if err := s.newSegment(s.wseg + 1); err != nil {
			return err
		}
	}
	buf := make([]byte, size)
	binary.LittleEndian.PutUint32(buf, uint32(len(data)))
	binary.LittleEndian.PutUint32(buf[4:], crc32.Checksum(data, castagnoli))
	binary.LittleEndian.PutUint64(buf[8:], uint64(time.Now().UnixNano()))
	copy(buf[headerSize:], data)
	if _, err := s.w.Write(buf); err != nil {
		return fmt.Errorf("spool: append: %w", err)
	}
	if !s.cfg.NoSync {
		if err := s.w.Sync(); err != nil {
			return fmt.Errorf("spool: sync: %w", err)
		}
	}
	s.sizes[s.wseg] += size
	close(s.wake)
	s.wake = make(chan struct{})
	return nil
}

// Wait returns a channel closed at the next Append.
func (s *Spool) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

// Next returns the next record not yet handed out, in append order, and
// false when there is none.
func (s *Spool) Next() (Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Record{}, false, ErrClosed
	}
	for s.read.Off >= s.sizes[s.read.Seg] {
		i := slices.Index(s.segs, s.read.Seg)
		if i < 0 || i == len(s.segs)-1 {
			return Record{}, false, nil
		}
		s.read = Pos{Seg: s.segs[i+1]}
	}
	f, err := os.Open(s.segPath(s.read.Seg))
	if err != nil {
		return Record{}, false, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	hdr := make([]byte, headerSize)
	if _, err := f.ReadAt(hdr, s.read.Off); err != nil {
		return Record{}, false, fmt.Errorf("spool: read: %w", err)
	}
	n := int64(binary.LittleEndian.Uint32(hdr))
	data := make([]byte, n)
	if _, err := f.ReadAt(data, s.read.Off+headerSize); err != nil && !errors.Is(err, io.EOF) {
		return Record{}, false, fmt.Errorf("spool: read: %w", err)
	}
	pos := s.read
	pos.next = s.read.Off + headerSize + n
	s.read.Off = pos.next
	s.pending = append(s.pending, pos)
	return Record{Pos: pos, Data: data, Appended: time.Unix(0, int64(binary.LittleEndian.Uint64(hdr[8:])))}, true, nil
}

// Commit marks a record handed out by Next as stored. The cursor advances
// over the committed prefix (records commit in any order) and is written
// to disk; fully committed segments are deleted.
func (s *Spool) Commit(p Pos) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.done[p] = true
	advanced := false
	for len(s.pending) > 0 && s.done[s.pending[0]] {
		q := s.pending[0]
		delete(s.done, q)
		s.pending = s.pending[1:]
		s.cursor = Pos{Seg: q.Seg, Off: q.next}
		advanced = true
	}
	if !advanced {
		return nil
	}
	// Move the cursor past a finished segment.
	if s.cursor.Off >= s.sizes[s.cursor.Seg] && s.cursor.Seg != s.wseg {
		if i := slices.Index(s.segs, s.cursor.Seg); i >= 0 && i+1 < len(s.segs) {
			s.cursor = Pos{Seg: s.segs[i+1]}
		}
	}
	tmp := s.cursorPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", s.cursor.Seg, s.cursor.Off)), 0o644); err != nil {
		return fmt.Errorf("spool: cursor: %w", err)
	}
	if err := os.Rename(tmp, s.cursorPath()); err != nil {
		return fmt.Errorf("spool: cursor: %w", err)
	}
	for len(s.segs) > 1 && s.segs[0] < s.cursor.Seg {
		_ = os.Remove(s.segPath(s.segs[0]))
		delete(s.sizes, s.segs[0])
		s.segs = s.segs[1:]
	}
	return nil
}

// Rewind hands out again every record not committed (after the consumer
// gave up on them, e.g. the pipeline stopped).
func (s *Spool) Rewind() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = nil
	clear(s.done)
	s.read = s.cursor
}

// Bytes returns the bytes on disk not yet committed.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytesLocked()
}

func (s *Spool) bytesLocked() int64 {
	var n int64
	for _, id := range s.segs {
		if id >= s.cursor.Seg {
			n += s.sizes[id]
		}
	}
	return n - s.cursor.Off
}

// Empty reports whether every record has been committed.
func (s *Spool) Empty() bool { return s.Bytes() == 0 }

// OldestAge returns how long ago the oldest uncommitted record was
// appended, or 0 when the spool is empty.
func (s *Spool) OldestAge() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bytesLocked() == 0 {
		return 0
	}
	seg := s.cursor.Seg
	off := s.cursor.Off
	if off >= s.sizes[seg] {
		i := slices.Index(s.segs, seg)
		if i < 0 || i+1 >= len(s.segs) {
			return 0
		}
		seg, off = s.segs[i+1], 0
	}
	f, err := os.Open(s.segPath(seg))
	if err != nil {
		return 0
	}
	defer f.Close()
	hdr := make([]byte, headerSize)
	if _, err := f.ReadAt(hdr, off); err != nil {
		return 0
	}
	return time.Since(time.Unix(0, int64(binary.LittleEndian.Uint64(hdr[8:]))))
}

// Close closes the spool; uncommitted records stay on disk.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.w.Close()
}
