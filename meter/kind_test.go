package meter

import "testing"

func TestKindOf(t *testing.T) {
	tests := []struct {
		give                 string
		want                 Kind
		unit, kilo, consumed string
	}{
		{"water-litre", KindWater, "L", "kL", "volume"},
		{"WATER", KindWater, "L", "kL", "volume"},
		{"Water-Multijet", KindWater, "L", "kL", "volume"},
		{"sdm120", KindElectricity, "Wh", "kWh", "energy"},
		{"wat", KindElectricity, "Wh", "kWh", "energy"},
		{"", KindElectricity, "Wh", "kWh", "energy"},
		{"hotwater", KindElectricity, "Wh", "kWh", "energy"},
	}
	for _, tt := range tests {
		k := KindOf(tt.give)
		if k != tt.want || k.Unit() != tt.unit || k.KiloUnit() != tt.kilo || k.Consumption() != tt.consumed {
			t.Errorf("KindOf(%q) = %v (%s, %s, %s), want %v (%s, %s, %s)", tt.give, k, k.Unit(), k.KiloUnit(), k.Consumption(),
				tt.want, tt.unit, tt.kilo, tt.consumed)
		}
	}
	if KindWater.String() != "water" || KindElectricity.String() != "electricity" {
		t.Errorf("names %q %q", KindWater, KindElectricity)
	}
}
