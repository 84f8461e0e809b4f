package modbus

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/meterd/meterd/ingest"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/postgres"
)

// Spool records: version byte, reading count, readings, reject count,
// rejects. Readings are fixed-size; rejects carry length-prefixed strings.
const recordVersion = 1

var errRecord = errors.New("modbus: malformed spool record")

func encodeEnvelope(e *ingest.Envelope) []byte {
	b := []byte{recordVersion}
	b = binary.AppendUvarint(b, uint64(len(e.Readings)))
	for i := range e.Readings {
		r := &e.Readings[i]
		b = binary.LittleEndian.AppendUint64(b, uint64(r.MeterID))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.Time.UnixMicro()))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.ReceivedAt.UnixMicro()))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.ImportWh))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.ExportWh))
		for _, x := range [...]float32{r.PowerW, r.VoltageV, r.CurrentA, r.FrequencyHz, r.PowerFactor} {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(r.Fields))
		b = binary.LittleEndian.AppendUint16(b, uint16(r.Source))
		b = binary.LittleEndian.AppendUint16(b, uint16(r.Quality))
	}
	b = binary.AppendUvarint(b, uint64(len(e.Rejects)))
	for _, rj := range e.Rejects {
		b = binary.LittleEndian.AppendUint64(b, uint64(rj.ReceivedAt.UnixMicro()))
		b = binary.LittleEndian.AppendUint16(b, uint16(rj.Source))
		for _, s := range []string{rj.Topic, rj.MeterRef, string(rj.Reason), rj.Detail, string(rj.Payload)} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

const readingSize = 5*8 + 5*4 + 3*2

func decodeEnvelope(b []byte) (*ingest.Envelope, error) {
	if len(b) < 1 || b[0] != recordVersion {
		return nil, errRecord
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k)/readingSize {
		return nil, errRecord
	}
	b = b[k:]
	e := &ingest.Envelope{Readings: make([]meter.Reading, n)}
	u64 := func() uint64 { v := binary.LittleEndian.Uint64(b); b = b[8:]; return v }
	u32 := func() uint32 { v := binary.LittleEndian.Uint32(b); b = b[4:]; return v }
	u16 := func() uint16 { v := binary.LittleEndian.Uint16(b); b = b[2:]; return v }
	for i := range e.Readings {
		r := &e.Readings[i]
		r.MeterID = int64(u64())
		r.Time = time.UnixMicro(int64(u64())).UTC()
		r.ReceivedAt = time.UnixMicro(int64(u64())).UTC()
		r.ImportWh, r.ExportWh = int64(u64()), int64(u64())
		for _, p := range []*float32{&r.PowerW, &r.VoltageV, &r.CurrentA, &r.FrequencyHz, &r.PowerFactor} {
			*p = math.Float32frombits(u32())
		}
		r.Fields, r.Source, r.Quality = meter.Fields(u16()), meter.Source(u16()), meter.Quality(u16())
	}
	m, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, errRecord
	}
	b = b[k:]
	str := func() (string, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(l)])
		b = b[k+int(l):]
		return s, true
	}
	for range m {
		if len(b) < 10 {
			return nil, errRecord
		}
		var rj postgres.Reject
		rj.ReceivedAt = time.UnixMicro(int64(u64())).UTC()
		rj.Source = meter.Source(u16())
		var f [5]string
		for i := range f {
			s, ok := str()
			if !ok {
				return nil, errRecord
			}
			f[i] = s
		}
		rj.Topic, rj.MeterRef, rj.Reason, rj.Detail, rj.Payload = f[0], f[1], meter.Reason(f[2]), f[3], []byte(f[4])
		e.Rejects = append(e.Rejects, rj)
	}
	return e, nil
}
