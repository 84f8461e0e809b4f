package notify

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus metrics.
type Metrics struct {
	fanout   prometheus.Counter
	outcomes *prometheus.CounterVec
	duration *prometheus.HistogramVec
	breaker  *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		fanout: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "meterd", Subsystem: "notify",
			Name: "outbox_claimed_total", Help: "Outbox rows fanned out into deliveries."}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "meterd", Subsystem: "notify",
			Name: "attempts_total", Help: "Delivery attempts by channel, provider and outcome (sent, reconciled, retry, failed, cancelled)."},
			[]string{"channel", "provider", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "meterd", Subsystem: "notify",
			Name: "send_seconds", Help: "Provider call duration.", Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 9)},
			[]string{"channel", "provider"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "meterd", Subsystem: "notify",
			Name: "breaker_state", Help: "Provider circuit: 0 closed, 1 half-open, 2 open."}, []string{"provider"}),
	}
	if reg != nil {
		reg.MustRegister(m.fanout, m.outcomes, m.duration, m.breaker)
	}
	return m
}
