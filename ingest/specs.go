package ingest

import (
	"sync"

	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/regmap"
)

// ModelSpecs gives the counter arithmetic of a meter model's energy
// registers from its register map (meter/regmap), for meters whose model
// names one: an MQTT meter that forwards a SunSpec acc32 register wraps
// where the Modbus one does. SunSpec scale factors take the map's default.
// Models without a map count integer Wh that never wrap. Safe for
// concurrent use.
type ModelSpecs struct {
	mu    sync.Mutex
	specs map[string][2]*meter.CounterSpec // model → import, export (nil: none)
}

// Spec returns the spec of model's import (reg meter.FieldImport) or
// export register, and false when the model has no map or no such register.
func (s *ModelSpecs) Spec(model string, reg meter.Fields) (meter.CounterSpec, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.specs == nil {
		s.specs = map[string][2]*meter.CounterSpec{}
	}
	e, ok := s.specs[model]
	if !ok {
		if m, err := regmap.Load(model); err == nil {
			for i, q := range []meter.Quantity{meter.QuantityImportEnergy, meter.QuantityExportEnergy} {
				r, ok := m.Register(q)
				if !ok {
					continue
				}
				sf := 0
				if r.ScaleFactor >= 0 {
					sf = m.Registers[r.ScaleFactor].DefaultSF
				}
				if spec, err := m.CounterSpec(q, sf); err == nil {
					e[i] = &spec
				}
			}
		}
		s.specs[model] = e
	}
	i := 0
	if reg == meter.FieldExport {
		i = 1
	}
	if e[i] == nil {
		return meter.CounterSpec{}, false
	}
	return *e[i], true
}
