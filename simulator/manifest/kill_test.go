package manifest

import (
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// helperPath makes the test binary the writer process of TestKill9.
var helperPath = flag.String("manifest-helper", "", "internal: write a manifest at this path until killed")

// TestHelperWriter is not a test: TestKill9 runs it in a child process,
// which writes records until it is killed.
func TestHelperWriter(t *testing.T) {
	path := *helperPath
	if path == "" {
		t.Skip("helper process only")
	}
	w, err := Create(path, testHeader(), WriterOptions{FlushEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; ; i++ {
		m := Message{Meter: i % 3, QoS: 1, Readings: []Reading{{Time: t0.Add(time.Duration(i) * time.Minute), ImportWh: int64(i), PowerW: 1}}}
		if err := w.Message(m); err != nil {
			t.Fatal(err)
		}
	}
}

// A kill -9 of the writing process leaves a manifest that reads without
// error up to its last complete record.
func TestKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "killed.manifest")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-manifest-helper="+path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, err := os.Stat(path); err == nil && st.Size() > 256<<10 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the writer wrote less than 256 KiB in 20 s")
		}
		time.Sleep(10 * time.Millisecond) // polling a file another process writes: no signal to wait for
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	rd, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rd.Close() }()
	n := 0
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d records: %v", n, err)
		}
		if rec.Message == nil || rec.Message.Readings[0].ImportWh != int64(n) {
			t.Fatalf("record %d: %+v", n, rec)
		}
		n++
	}
	if n < 1000 || rd.Ended() {
		t.Fatalf("read %d records, ended=%v", n, rd.Ended())
	}
	t.Logf("%d complete records after kill -9 (torn tail: %v)", n, rd.Torn())
}
