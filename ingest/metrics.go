package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meterd/meterd/meter"
)

// Metrics are the gateway's Prometheus metrics. Labels are low-cardinality
// on purpose: sources, reasons, outcomes and Modbus devices, never meters.
type Metrics struct {
	Received       *prometheus.CounterVec // readings decoded or polled, by source
	Messages       *prometheus.CounterVec // MQTT messages handled, by outcome (accepted, rejected)
	Written        prometheus.Counter     // readings newly stored
	Duplicates     *prometheus.CounterVec // readings skipped as already seen, by where (batch, database)
	Rejected       *prometheus.CounterVec // readings or messages rejected, by reason
	Dropped        *prometheus.CounterVec // readings dropped without being stored, by reason
	BatchRows      prometheus.Histogram   // rows per committed batch
	BatchSeconds   prometheus.Histogram   // time to commit a batch, retries included
	WriteRetries   *prometheus.CounterVec // retried writes, by cause
	QueueReadings  prometheus.Gauge       // readings waiting in the pipeline
	CounterEvents  *prometheus.CounterVec // counter events detected, by kind
	MetersOffline  prometheus.Gauge       // installed meters silent beyond k × expected interval
	StateLag       prometheus.Gauge       // latest-state and counter-event rows waiting to be flushed
	DBHealthy      prometheus.Gauge       // 1 when the last write succeeded
	ResolverMeters prometheus.Gauge       // meters in the resolver cache
	Lookups        *prometheus.CounterVec // meter reference lookups, by result (hit, miss_found, miss_unknown, negative_hit)
	registry       prometheus.Registerer  // kept for sources' own metrics
}

// NewMetrics creates the metrics and registers them on reg. Every reject
// reason is pre-registered, so dashboards see zeros rather than gaps.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns, sub = "meterd", "ingest"
	m := &Metrics{
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "received_readings_total",
			Help: "Readings decoded from MQTT messages or polled over Modbus, by source."}, []string{"source"}),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "mqtt_messages_total",
			Help: "MQTT messages handled, by outcome."}, []string{"outcome"}),
		Written: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "written_readings_total",
			Help: "Readings newly stored in the database."}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "duplicate_readings_total",
			Help: "Readings skipped because the same meter and time was already seen, by where it was caught."}, []string{"where"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rejected_total",
			Help: "Readings or messages stored in readings_rejected, by reason."}, []string{"reason"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dropped_readings_total",
			Help: "Readings dropped without being stored, by reason."}, []string{"reason"}),
		BatchRows: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_rows",
			Help: "Rows per committed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		BatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_commit_seconds",
			Help: "Time to commit a batch, retries included.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		WriteRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "write_retries_total",
			Help: "Database writes retried, by cause."}, []string{"cause"}),
		QueueReadings: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "queue_readings",
			Help: "Readings accepted by the pipeline and not yet committed."}),
		CounterEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "counter_events_total",
			Help: "Energy register resets, rollovers, replacements and jumps detected, by kind."}, []string{"kind"}),
		MetersOffline: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "meters_offline",
			Help: "Installed meters not heard from within k times their expected interval."}),
		StateLag: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "state_pending_rows",
			Help: "Latest-state rows and counter events waiting to be written."}),
		DBHealthy: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "database_healthy",
			Help: "1 when the last database write succeeded, 0 while writes fail."}),
		ResolverMeters: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "resolver_meters",
			Help: "Meters known to the reference resolver."}),
		Lookups: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "meter_lookups_total",
			Help: "Meter reference lookups, by result."}, []string{"result"}),
		registry: reg,
	}
	for _, r := range meter.Reasons() {
		m.Rejected.WithLabelValues(string(r))
	}
	for _, s := range []meter.Source{meter.SourceMQTT, meter.SourceModbus} {
		m.Received.WithLabelValues(s.String())
	}
	for _, k := range []meter.CounterEventKind{meter.CounterRollover, meter.CounterReset, meter.CounterReplacement, meter.CounterJump} {
		m.CounterEvents.WithLabelValues(k.String())
	}
	m.Duplicates.WithLabelValues("batch")
	m.Duplicates.WithLabelValues("database")
	for _, c := range []prometheus.Collector{m.Received, m.Messages, m.Written, m.Duplicates, m.Rejected, m.Dropped,
		m.BatchRows, m.BatchSeconds, m.WriteRetries, m.QueueReadings, m.CounterEvents, m.MetersOffline,
		m.StateLag, m.DBHealthy, m.ResolverMeters, m.Lookups} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Register registers a source's own collectors on the same registry.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.registry.Register(c); err != nil {
			return err
		}
	}
	return nil
}
