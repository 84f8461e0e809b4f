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

// kindUnits are a kind's words: its name, its register unit, a thousand
// of those, and what the import register measures.
type kindUnits struct{ name, unit, kilo, consumption string }

func (k Kind) units() kindUnits {
	if k == KindWater {
		return kindUnits{"water", "L", "kL", "volume"}
	}
	return kindUnits{"electricity", "Wh", "kWh", "energy"}
}

// String returns "electricity" or "water".
func (k Kind) String() string { return k.units().name }

// Unit is the unit of one register count: "Wh" or "L".
func (k Kind) Unit() string { return k.units().unit }

// KiloUnit is the unit of a thousand register counts, the one people read
// consumption in: "kWh" or "kL".
func (k Kind) KiloUnit() string { return k.units().kilo }

// Consumption names what the import register measures: "energy" or
// "volume".
func (k Kind) Consumption() string { return k.units().consumption }
