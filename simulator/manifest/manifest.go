package manifest

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"github.com/meterd/meterd/simulator"
)

// Magic starts every manifest file.
const Magic = "MSIMMAN1"

// maxRecord bounds one record's payload.
const maxRecord = 16 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors.
var (
	ErrNotManifest = errors.New("not a simulator manifest")
	ErrCorrupt     = errors.New("corrupt manifest")
	ErrClosed      = errors.New("manifest closed")
)

// Record types.
const (
	typeHeader  = 'H'
	typeMessage = 'M'
	typeFault   = 'F'
	typeEnd     = 'E'
)

// Header describes the run a manifest records.
type Header struct {
	// Fleet is the fleet's config with defaults filled in: enough to
	// rebuild every meter and recompute any reading.
	Fleet simulator.Config `json:"fleet"`
	// Source is "mqtt" (a publisher run) or "modbus" (a server run).
	Source string `json:"source"`
	// QoS is the MQTT QoS of the run's messages.
	QoS int `json:"qos"`
	// Batch is the readings per canonical message (1: single readings).
	Batch int `json:"batch"`
	// Tool names what wrote the file, e.g. "metersim run".
	Tool string `json:"tool"`
	// Created is when the file was created (wall clock, UTC).
	Created time.Time `json:"created"`
}

// Reading is one reading as delivered: the registers verify compares.
type Reading struct {
	Time     time.Time // µs precision, UTC
	ImportWh int64
	ExportWh int64
	PowerW   float32
}

// Message flags.
const (
	// FlagResend marks a message sent again (a duplicate-delivery fault).
	FlagResend uint8 = 1 << iota
	// FlagDelayed marks a message held back (out-of-order or late).
	FlagDelayed
)

// Message is one delivered message: a meter's readings.
type Message struct {
	Meter    int   // index in the fleet
	QoS      uint8 // 0 or 1; readings only ever sent at QoS 0 may be missing
	Flags    uint8
	Readings []Reading
}

// Fault is one injected fault.
type Fault struct {
	Kind  simulator.Kind
	Meter int // index in the fleet, or -1
	At    time.Time
	// Ref is the meter reference the fault's input claimed (its topic's
	// meter); empty when the fault produced no input.
	Ref string
	// Forbidden is the source timestamp the database must not hold a
	// reading at for Ref (malformed input); zero if none.
	Forbidden time.Time
	// Detail is a short JSON text with the fault's particulars (the
	// registers before and after a reset, the serials of a replacement,
	// the broker's answer to a malformed message …).
	Detail string
}

// WriterOptions tune a Writer.
type WriterOptions struct {
	// FlushEvery is how often buffered records are handed to the
	// operating system (and so survive a kill -9 of the process).
	// Default 100 ms.
	FlushEvery time.Duration
	// SyncEvery is how often the file is fsynced (and so survives a
	// machine crash). Default 1 s.
	SyncEvery time.Duration
}

// Writer appends records to a manifest file. It is safe for concurrent use.
// Close stops its background flusher.
type Writer struct {
	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	buf    []byte
	err    error
	closed bool
	dirty  bool

	stop chan struct{}
	done chan struct{}
	opt  WriterOptions

	messages, readings, faults int64
}

// Create creates (or truncates) the manifest at path and writes its header.
func Create(path string, h Header, opt WriterOptions) (*Writer, error) {
	if opt.FlushEvery <= 0 {
		opt.FlushEvery = 100 * time.Millisecond
	}
	if opt.SyncEvery <= 0 {
		opt.SyncEvery = time.Second
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	hj, err := json.Marshal(h)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("manifest: header: %w", err)
	}
	w := &Writer{f: f, w: bufio.NewWriterSize(f, 1<<16), stop: make(chan struct{}), done: make(chan struct{}), opt: opt}
	if _, err := w.w.WriteString(Magic); err != nil {
		f.Close()
		return nil, fmt.Errorf("manifest: %w", err)
	}
	w.record(append([]byte{typeHeader}, hj...))
	if err := w.flushLocked(true); err != nil {
		f.Close()
		return nil, err
	}
	go w.loop()
	return w, nil
}

func (w *Writer) loop() {
	defer close(w.done)
	flush := time.NewTicker(w.opt.FlushEvery)
	defer flush.Stop()
	lastSync := time.Now()
	for {
		select {
		case <-w.stop:
			return
		case now := <-flush.C:
			sync := now.Sub(lastSync) >= w.opt.SyncEvery
			w.mu.Lock()
			if w.dirty && !w.closed {
				_ = w.flushLocked(sync)
				if sync {
					lastSync = now
				}
			}
			w.mu.Unlock()
		}
	}
}

// record frames payload p into the buffered writer.
func (w *Writer) record(p []byte) {
	if w.err != nil {
		return
	}
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[0:], uint32(len(p)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(p, castagnoli))
	if _, err := w.w.Write(hdr[:]); err != nil {
		w.err = err
		return
	}
	if _, err := w.w.Write(p); err != nil {
		w.err = err
	}
	w.dirty = true
}

func (w *Writer) flushLocked(sync bool) error {
	if w.err == nil {
		w.err = w.w.Flush()
	}
	if w.err == nil && sync {
		w.err = w.f.Sync()
	}
	w.dirty = w.dirty && w.err != nil
	if w.err != nil {
		return fmt.Errorf("manifest: %w", w.err)
	}
	return nil
}

// Message records one delivered message.
func (w *Writer) Message(m Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	b := append(w.buf[:0], typeMessage)
	b = binary.AppendUvarint(b, uint64(m.Meter))
	b = append(b, m.QoS, m.Flags)
	b = binary.AppendUvarint(b, uint64(len(m.Readings)))
	var prev int64
	for i, r := range m.Readings {
		us := r.Time.UnixMicro()
		if i == 0 {
			b = binary.AppendVarint(b, us)
		} else {
			b = binary.AppendVarint(b, us-prev)
		}
		prev = us
		b = binary.AppendUvarint(b, uint64(r.ImportWh))
		b = binary.AppendUvarint(b, uint64(r.ExportWh))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(r.PowerW))
	}
	w.buf = b
	w.record(b)
	w.messages++
	w.readings += int64(len(m.Readings))
	if w.err != nil {
		return fmt.Errorf("manifest: %w", w.err)
	}
	return nil
}

// Fault records one injected fault.
func (w *Writer) Fault(f Fault) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	b := append(w.buf[:0], typeFault, byte(f.Kind))
	b = binary.AppendUvarint(b, uint64(f.Meter+1))
	b = binary.AppendVarint(b, f.At.UnixMicro())
	b = appendString(b, f.Ref)
	b = appendString(b, f.Detail)
	if f.Forbidden.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendVarint(b, f.Forbidden.UnixMicro())
	}
	w.buf = b
	w.record(b)
	w.faults++
	if w.err != nil {
		return fmt.Errorf("manifest: %w", w.err)
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Sync hands buffered records to the operating system and fsyncs the file.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	return w.flushLocked(true)
}

// Counts returns how many messages, readings and faults were recorded.
func (w *Writer) Counts() (messages, readings, faults int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.messages, w.readings, w.faults
}

// Close writes the end record, fsyncs and closes the file, and stops the
// background flusher. It is safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record([]byte{typeEnd})
	err := w.flushLocked(true)
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("manifest: %w", cerr)
	}
	return err
}

// Record is one record read back: exactly one of Message and Fault is set.
type Record struct {
	Message *Message
	Fault   *Fault
}

// Reader reads a manifest as a stream.
type Reader struct {
	f      *os.File
	r      *bufio.Reader
	header Header
	off    int64
	size   int64
	buf    []byte
	torn   bool
	ended  bool
	msg    Message
	fault  Fault
}

// Open opens the manifest at path and reads its header.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("manifest: %w", err)
	}
	rd := &Reader{f: f, r: bufio.NewReaderSize(f, 1<<16), size: st.Size()}
	var magic [len(Magic)]byte
	if _, err := io.ReadFull(rd.r, magic[:]); err != nil || string(magic[:]) != Magic {
		f.Close()
		return nil, fmt.Errorf("manifest: %s: %w", path, ErrNotManifest)
	}
	rd.off = int64(len(Magic))
	p, err := rd.next()
	if err == nil && (len(p) == 0 || p[0] != typeHeader) {
		err = fmt.Errorf("manifest: %w: first record is not a header", ErrCorrupt)
	}
	if err == nil {
		if jerr := json.Unmarshal(p[1:], &rd.header); jerr != nil {
			err = fmt.Errorf("manifest: %w: header: %v", ErrCorrupt, jerr)
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("manifest: %s: %w: no complete header", path, ErrCorrupt)
		}
		return nil, err
	}
	return rd, nil
}

// Header returns the manifest's header.
func (rd *Reader) Header() Header { return rd.header }

// Torn reports, after Next returned io.EOF, whether the file ended in an
// incomplete record (the writer crashed); Ended whether it ended with the
// end record (the writer closed cleanly).
func (rd *Reader) Torn() bool { return rd.torn }

// Ended reports whether the end record was read.
func (rd *Reader) Ended() bool { return rd.ended }

// Close closes the file.
func (rd *Reader) Close() error { return rd.f.Close() }

// next returns the next record's payload, io.EOF at the end (including a
// torn tail), or ErrCorrupt.
func (rd *Reader) next() ([]byte, error) {
	var hdr [8]byte
	n, err := io.ReadFull(rd.r, hdr[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		rd.torn = n > 0
		return nil, io.EOF
	}
	size := binary.LittleEndian.Uint32(hdr[0:])
	sum := binary.LittleEndian.Uint32(hdr[4:])
	end := rd.off + 8 + int64(size)
	if end > rd.size {
		// The record runs past the end of the file: a write the crash
		// cut short (appends only ever leave a prefix of a record).
		rd.torn = true
		return nil, io.EOF
	}
	if size > maxRecord {
		return nil, fmt.Errorf("manifest: %w: record at offset %d claims %d bytes", ErrCorrupt, rd.off, size)
	}
	if cap(rd.buf) < int(size) {
		rd.buf = make([]byte, size)
	}
	p := rd.buf[:size]
	if _, err := io.ReadFull(rd.r, p); err != nil {
		rd.torn = true
		return nil, io.EOF
	}
	if crc32.Checksum(p, castagnoli) != sum || size == 0 {
		if end == rd.size {
			rd.torn = true
			return nil, io.EOF
		}
		return nil, fmt.Errorf("manifest: %w: checksum mismatch in record at offset %d", ErrCorrupt, rd.off)
	}
	rd.off = end
	return p, nil
}

// Next returns the next message or fault, and io.EOF after the last. The
// returned record (and the slices in it) are valid until the next call.
func (rd *Reader) Next() (Record, error) {
	for {
		p, err := rd.next()
		if err != nil {
			return Record{}, err
		}
		switch p[0] {
		case typeMessage:
			if err := rd.decodeMessage(p[1:]); err != nil {
				return Record{}, err
			}
			return Record{Message: &rd.msg}, nil
		case typeFault:
			if err := rd.decodeFault(p[1:]); err != nil {
				return Record{}, err
			}
			return Record{Fault: &rd.fault}, nil
		case typeEnd:
			rd.ended = true
		default:
			return Record{}, fmt.Errorf("manifest: %w: unknown record type %q at offset %d", ErrCorrupt, p[0], rd.off)
		}
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("manifest: %w: short record", ErrCorrupt)
	}
	d.b = nil
}

func (rd *Reader) decodeMessage(p []byte) error {
	d := decoder{b: p}
	m := &rd.msg
	m.Meter = int(d.uvarint())
	m.QoS = d.byte()
	m.Flags = d.byte()
	n := d.uvarint()
	if n > maxRecord {
		d.fail()
	}
	m.Readings = m.Readings[:0]
	var us int64
	for i := uint64(0); i < n && d.err == nil; i++ {
		if i == 0 {
			us = d.varint()
		} else {
			us += d.varint()
		}
		r := Reading{Time: time.UnixMicro(us).UTC()}
		r.ImportWh = int64(d.uvarint())
		r.ExportWh = int64(d.uvarint())
		r.PowerW = math.Float32frombits(d.u32())
		m.Readings = append(m.Readings, r)
	}
	return d.err
}

func (rd *Reader) decodeFault(p []byte) error {
	d := decoder{b: p}
	f := &rd.fault
	*f = Fault{}
	f.Kind = simulator.Kind(d.byte())
	f.Meter = int(d.uvarint()) - 1
	f.At = time.UnixMicro(d.varint()).UTC()
	f.Ref = d.string()
	f.Detail = d.string()
	if d.byte() == 1 {
		f.Forbidden = time.UnixMicro(d.varint()).UTC()
	}
	return d.err
}
