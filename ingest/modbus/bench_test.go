package modbus

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/meterd/meterd/meter/regmap"
	"github.com/meterd/meterd/simulator"
	"github.com/meterd/meterd/simulator/modbussrv"
)

// BenchmarkPoll100Devices polls 100 simulated SDM630 meters behind 10
// Modbus TCP gateways (the simulator's server) every second for 10 s and
// reports the share of polls that started on time (within 10% of the
// interval after their slot) against the schedule's ideal count (the
// same-run baseline: devices × elapsed slots).
func BenchmarkPoll100Devices(b *testing.B) {
	const gateways, perGateway = 10, 10
	addrs := make([]string, gateways)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addrs[i] = l.Addr().String()
		_ = l.Close()
	}
	f, err := simulator.New(simulator.Config{Seed: 3, Meters: gateways * perGateway, ModbusMeters: gateways * perGateway,
		Models: []string{"sdm630"}, ModbusGateways: addrs, UnitsPerGateway: perGateway,
		Start: time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := modbussrv.New(f, modbussrv.Config{MaxClients: 4})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Stop(context.Background()) }()
	mp, err := regmap.Load("sdm630")
	if err != nil {
		b.Fatal(err)
	}
	index := map[string]int{}
	var buses []Bus
	for i := range f.Len() {
		m := f.Meter(i)
		k, ok := index[m.Gateway]
		if !ok {
			k = len(buses)
			index[m.Gateway] = k
			buses = append(buses, Bus{Transport: TCP, Address: m.Gateway})
		}
		buses[k].Devices = append(buses[k].Devices, Device{Name: m.ExternalID, MeterID: int64(i + 1), Unit: m.Unit, Map: mp, Interval: time.Second})
	}
	var polls, onTime, ideal, failed int64
	b.ResetTimer()
	for range b.N {
		pipe := newPipe()
		p, err := New(Config{Timeout: 500 * time.Millisecond}, buses, pipe, nil, nil, defaultLimits(), nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := p.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		_ = p.Stop(context.Background())
		elapsed := time.Since(t0)
		for _, s := range p.Stats() {
			polls += s.Polls
			onTime += s.OnTime
			failed += s.Failed
		}
		ideal += int64(elapsed/time.Second) * gateways * perGateway
	}
	b.StopTimer()
	b.ReportMetric(float64(onTime)/float64(polls), "on_time/polls")
	b.ReportMetric(float64(polls)/float64(ideal), "polls/scheduled")
	b.ReportMetric(float64(failed), "failed_polls")
}

// BenchmarkHungDevice: one of ten devices on a bus never answers. Its
// breaker opens after one 200 ms timeout and probes once per 2 s period,
// so it delays the other nine by at most one timeout per period. Reports
// the hung device's timeouts per breaker period (bound 1), the healthy
// devices' worst start delay in timeouts, and their on-time share (polls
// queued behind a probe in its slot start late by up to one timeout).
func BenchmarkHungDevice(b *testing.B) {
	h := newDevices()
	var devs []Device
	for u := uint8(1); u <= 10; u++ {
		m, img := sdm630Image(b, int64(u)*1000, false)
		h.images[u] = img
		devs = append(devs, Device{Name: string(rune('a' + u)), MeterID: int64(u), Unit: u, Map: m, Interval: time.Second})
	}
	h.delay[5] = time.Hour
	addr := serve(b, h)
	const period, run = 2 * time.Second, 10 * time.Second
	var healthyPolls, healthyOnTime, hungTimeouts int64
	var maxDelay time.Duration
	b.ResetTimer()
	for range b.N {
		p, err := New(Config{Timeout: 200 * time.Millisecond, BreakerPeriod: period}, []Bus{{Transport: TCP, Address: addr, Devices: devs}},
			newPipe(), nil, nil, defaultLimits(), nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		time.Sleep(run)
		_ = p.Stop(context.Background())
		for name, s := range p.Stats() {
			if name == string(rune('a'+5)) {
				hungTimeouts += s.Failed
				continue
			}
			healthyPolls += s.Polls
			healthyOnTime += s.OnTime
			maxDelay = max(maxDelay, s.MaxDelay)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(healthyOnTime)/float64(healthyPolls), "healthy_on_time/polls")
	b.ReportMetric(float64(hungTimeouts)/float64(int64(b.N)*int64(run/period)), "hung_timeouts/breaker_period")
	// How long the others waited at worst, in timeouts: ≤ 1 plus the
	// ordinary poll time of the devices ahead of them.
	b.ReportMetric(maxDelay.Seconds()/(200*time.Millisecond).Seconds(), "healthy_max_delay/timeout")
}
