package simulator

import "math"

// Everything random in the simulator is a pure function of the fleet seed and
// a few integers (meter, slot, kind, …), never of a stateful generator, so
// that any value can be computed on its own: a reading at one time does not
// depend on which other readings were computed first, and a test or verify
// can recompute what the simulator sent.

// mix is the splitmix64 finaliser: a bijective 64-bit hash.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// hash combines a seed with several integers.
func hash(seed uint64, xs ...uint64) uint64 {
	h := mix(seed)
	for _, x := range xs {
		h = mix(h ^ x)
	}
	return h
}

// unit maps a hash to a float64 uniform in [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// uniform returns a value uniform in [lo, hi) for the hash of seed and xs.
func uniform(lo, hi float64, seed uint64, xs ...uint64) float64 {
	return lo + (hi-lo)*unit(hash(seed, xs...))
}

// tri returns a triangular value in (-1, 1) with mean 0 (sum of two
// uniforms), a cheap bell-shaped noise.
func tri(h uint64) float64 { return unit(h) + unit(mix(h)) - 1 }

// gauss is an unnormalised Gaussian bump centred on mu with width sigma.
func gauss(x, mu, sigma float64) float64 {
	d := (x - mu) / sigma
	return math.Exp(-d * d / 2)
}

// ramp rises smoothly from 0 at a to 1 at b.
func ramp(x, a, b float64) float64 {
	switch {
	case x <= a:
		return 0
	case x >= b:
		return 1
	}
	t := (x - a) / (b - a)
	return t * t * (3 - 2*t)
}

// Hash domains, so that different uses of the same integers never share a
// stream.
const (
	domMeter uint64 = iota + 1
	domProfile
	domModel
	domSolar
	domScale
	domPhase
	domVoltage
	domSlotNoise
	domHourNoise
	domCloud
	domFreq
	domEvent
	domDelivery
	domDevice
	domFormat
	domRequest
	domReplace
	domInitial
	domSecret
)
