package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {0, 1}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty input")
	}
}

func TestCombine(t *testing.T) {
	runs := []*result{
		{Metrics: map[string]float64{"ops": 3}, Seconds: 1, DiskPeak: 10, DiskAfter: 5, PeakRSS: 7},
		{Metrics: map[string]float64{"ops": 1}, Seconds: 3, DiskPeak: 30, DiskAfter: 6, PeakRSS: 9},
		{Metrics: map[string]float64{"ops": 2}, Seconds: 2, DiskPeak: 20, DiskAfter: 4, PeakRSS: 8},
	}
	c := combine(runs)
	if c.Metrics["ops"] != 2 || c.Seconds != 2 || c.PeakRSS != 8 {
		t.Errorf("medians: %+v", c)
	}
	if c.DiskPeak != 30 || c.DiskAfter != 4 || c.Runs != 3 {
		t.Errorf("disk: peak %d (want the highest, 30), after %d (want the last run's, 4), runs %d", c.DiskPeak, c.DiskAfter, c.Runs)
	}
}

func TestDiskBytes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	sparse, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	sparse.Truncate(1 << 30) // allocates nothing: du does not count it
	sparse.Close()
	if got := diskBytes(dir); got < 64<<10 || got > 1<<20 {
		t.Errorf("diskBytes = %d, want about 64 KiB", got)
	}
}
