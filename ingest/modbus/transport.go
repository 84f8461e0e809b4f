package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	gm "github.com/goburrow/modbus"

	"github.com/meterd/meterd/meter/regmap"
)

// Transport is how a bus is reached.
type Transport string

// Transports.
const (
	TCP        Transport = "tcp"        // Modbus TCP (MBAP header)
	RTUOverTCP Transport = "rtuovertcp" // RTU frames through a TCP socket (transparent serial converter)
	RTU        Transport = "rtu"        // RTU on a serial line
)

// conn is one bus's connection: a goburrow client whose connection is
// closed after any error, so that a late reply to a timed-out request
// cannot answer the next one.
type conn struct {
	transport Transport
	client    gm.Client
	setUnit   func(byte)
	setTO     func(time.Duration)
	close     func() error
}

// SerialConfig is the line setting of an RTU bus.
type SerialConfig struct {
	BaudRate int    // default 9600
	DataBits int    // default 8
	StopBits int    // default 1
	Parity   string // N, E or O; default N
}

func newConn(t Transport, address string, sc SerialConfig) (*conn, error) {
	switch t {
	case TCP:
		h := gm.NewTCPClientHandler(address)
		h.IdleTimeout = time.Minute
		return &conn{transport: t, client: gm.NewClient(h),
			setUnit: func(u byte) { h.SlaveId = u }, setTO: func(d time.Duration) { h.Timeout = d }, close: h.Close}, nil
	case RTU:
		h := gm.NewRTUClientHandler(address)
		h.BaudRate, h.DataBits, h.StopBits, h.Parity = sc.BaudRate, sc.DataBits, sc.StopBits, sc.Parity
		if h.BaudRate == 0 {
			h.BaudRate = 9600
		}
		if h.DataBits == 0 {
			h.DataBits = 8
		}
		if h.StopBits == 0 {
			h.StopBits = 1
		}
		if h.Parity == "" {
			h.Parity = "N"
		}
		h.IdleTimeout = time.Minute
		return &conn{transport: t, client: gm.NewClient(h),
			setUnit: func(u byte) { h.SlaveId = u }, setTO: func(d time.Duration) { h.Timeout = d }, close: h.Close}, nil
	case RTUOverTCP:
		pk := gm.NewRTUClientHandler("") // used only for RTU framing and CRC
		tr := &rtuTCPTransporter{address: address}
		return &conn{transport: t, client: gm.NewClient2(pk, tr),
			setUnit: func(u byte) { pk.SlaveId = u }, setTO: func(d time.Duration) { tr.setTimeout(d) }, close: tr.Close}, nil
	}
	return nil, fmt.Errorf("modbus: unknown transport %q (want tcp, rtuovertcp or rtu)", t)
}

// read reads count registers of function fn from unit. Any error closes
// the connection; the next read reconnects.
func (c *conn) read(unit byte, fn regmap.Function, start, count uint16, timeout time.Duration) ([]uint16, error) {
	c.setUnit(unit)
	c.setTO(timeout)
	var b []byte
	var err error
	switch fn {
	case regmap.FuncHolding:
		b, err = c.client.ReadHoldingRegisters(start, count)
	case regmap.FuncInput:
		b, err = c.client.ReadInputRegisters(start, count)
	default:
		err = fmt.Errorf("modbus: function %v not supported", fn)
	}
	if err == nil && len(b) != 2*int(count) {
		err = fmt.Errorf("modbus: %d bytes for %d registers", len(b), count)
	}
	if err != nil {
		_ = c.close()
		return nil, err
	}
	words := make([]uint16, count)
	for i := range words {
		words[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return words, nil
}

// rtuTCPTransporter sends RTU frames over a TCP connection, reading each
// reply by the length its header announces.
type rtuTCPTransporter struct {
	address string
	mu      sync.Mutex
	timeout time.Duration
	c       net.Conn
}

func (t *rtuTCPTransporter) setTimeout(d time.Duration) {
	t.mu.Lock()
	t.timeout = d
	t.mu.Unlock()
}

func (t *rtuTCPTransporter) Send(req []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	to := t.timeout
	if to <= 0 {
		to = time.Second
	}
	if t.c == nil {
		c, err := net.DialTimeout("tcp", t.address, to)
		if err != nil {
			return nil, err
		}
		t.c = c
	}
	if err := t.c.SetDeadline(time.Now().Add(to)); err != nil {
		return nil, err
	}
	if _, err := t.c.Write(req); err != nil {
		return nil, err
	}
	// unit, function, then byte count (data) or exception code.
	var buf [256]byte
	if _, err := io.ReadFull(t.c, buf[:3]); err != nil {
		return nil, err
	}
	n := 3 + 2 // exception: code + CRC
	if buf[1]&0x80 == 0 {
		n = 3 + int(buf[2]) + 2
	}
	if n > len(buf) {
		return nil, errors.New("modbus: RTU reply too long")
	}
	if _, err := io.ReadFull(t.c, buf[3:n]); err != nil {
		return nil, err
	}
	return append([]byte(nil), buf[:n]...), nil
}

func (t *rtuTCPTransporter) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c == nil {
		return nil
	}
	err := t.c.Close()
	t.c = nil
	return err
}

// isException reports whether err is a Modbus exception reply (the device
// answered, so it is alive), and its code.
func isException(err error) (byte, bool) {
	var me *gm.ModbusError
	if errors.As(err, &me) {
		return me.ExceptionCode, true
	}
	return 0, false
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
