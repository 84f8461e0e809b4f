package meter

import "strings"

// Kind is what a meter measures, which decides the unit of its import and
// export registers. The registers hold integers either way (Reading.ImportWh,
// the rollups' *_wh columns): watt-hours for an electricity meter, litres for
// a water meter, so the same counter arithmetic serves both. People read
// consumption in thousands of register units: kWh, or kL (m³).
type Kind uint8

// Meter kinds.
const (
	KindElectricity Kind = iota // registers count Wh
	KindWater                   // registers count litres
)

// WaterModelPrefix starts the model name of every water meter
// ("water-litre"): meters.model says what the registers count.
const WaterModelPrefix = "water"

// KindOf returns the kind of a meter of model: water for a model starting
// with WaterModelPrefix (any case), electricity otherwise.
func KindOf(model string) Kind {
	if len(model) >= len(WaterModelPrefix) && strings.EqualFold(model[:len(WaterModelPrefix)], WaterModelPrefix) {
		return KindWater
	}
	return KindElectricity
}

// String returns "electricity" or "water".
func (k Kind) String() string {
	if k == KindWater {
		return "water"
	}
	return "electricity"
}

// Unit is the unit of one register count: "Wh" or "L".
func (k Kind) Unit() string {
	if k == KindWater {
		return "L"
	}
	return "Wh"
}

// KiloUnit is the unit of a thousand register counts, the one people read
// consumption in: "kWh" or "kL".
func (k Kind) KiloUnit() string {
	if k == KindWater {
		return "kL"
	}
	return "kWh"
}

// Consumption names what the import register measures: "energy" or
// "volume".
func (k Kind) Consumption() string {
	if k == KindWater {
		return "volume"
	}
	return "energy"
}
