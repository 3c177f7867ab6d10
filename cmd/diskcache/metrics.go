package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/diskcache-go/diskcache/engine"
)

// metrics are what serve exposes on --metrics-addr: the cache's counters
// (read from Stats at each scrape), the commands served and their latency.
type metrics struct {
	reg      *prometheus.Registry
	commands *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(stats func() engine.Stats) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "diskcache_commands_total",
			Help: "Redis-protocol commands served, by command and result (ok or error).",
		}, []string{"command", "result"}),
		// 10us to about 2.6s: a pipelined GET is tens of microseconds, an
		// fsynced write or a KEYS over a large cache much more.
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "diskcache_command_duration_seconds",
			Help:    "Time to run a Redis-protocol command, by command.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10),
		}, []string{"command"}),
	}
	m.reg.MustRegister(m.commands, m.latency, statsCollector{stats},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveCommand makes metrics a resp.Observer.
func (m *metrics) ObserveCommand(name string, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.commands.WithLabelValues(name, result).Inc()
	m.latency.WithLabelValues(name).Observe(took.Seconds())
}

var (
	descHits         = prometheus.NewDesc("diskcache_hits_total", "Gets that found a value.", nil, nil)
	descMisses       = prometheus.NewDesc("diskcache_misses_total", "Gets of missing or expired keys.", nil, nil)
	descSets         = prometheus.NewDesc("diskcache_sets_total", "Entries written.", nil, nil)
	descDeletes      = prometheus.NewDesc("diskcache_deletes_total", "Entries deleted by clients.", nil, nil)
	descExpirations  = prometheus.NewDesc("diskcache_expirations_total", "Expired entries deleted by the sweeper.", nil, nil)
	descEvictions    = prometheus.NewDesc("diskcache_evictions_total", "Entries evicted to hold the size limit.", nil, nil)
	descEvictedBytes = prometheus.NewDesc("diskcache_evicted_bytes_total", "Stored bytes of the evicted entries.", nil, nil)
	descEntries      = prometheus.NewDesc("diskcache_entries", "Entries stored, expired ones included until swept.", nil, nil)
	descBytes        = prometheus.NewDesc("diskcache_stored_bytes", "Stored bytes of the entries (keys and records).", nil, nil)
	descDiskBytes    = prometheus.NewDesc("diskcache_disk_bytes", "Bytes the cache takes on disk.", nil, nil)
)

// statsCollector reads the cache's Stats at each scrape.
type statsCollector struct{ stats func() engine.Stats }

func (statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHits, descMisses, descSets, descDeletes, descExpirations,
		descEvictions, descEvictedBytes, descEntries, descBytes, descDiskBytes} {
		ch <- d
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(descHits, s.Hits)
	counter(descMisses, s.Misses)
	counter(descSets, s.Sets)
	counter(descDeletes, s.Deletes)
	counter(descExpirations, s.Expirations)
	counter(descEvictions, s.Evictions)
	counter(descEvictedBytes, s.EvictedBytes)
	gauge(descEntries, s.Entries)
	gauge(descBytes, s.Bytes)
	gauge(descDiskBytes, s.DiskBytes)
}
