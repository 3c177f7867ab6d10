package main

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// diskBytes is what du reports for dir: the blocks allocated to every file
// under it, so sparse preallocated files count for what they hold.
func diskBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // a file removed mid-walk (compaction) is just gone
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}

// settle waits until diskBytes(dir) has not fallen for a second (at most
// 10 s) and returns it.
func settle(dir string) int64 {
	low, since := diskBytes(dir), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && time.Since(since) < time.Second; {
		time.Sleep(100 * time.Millisecond)
		if d := diskBytes(dir); d < low {
			low, since = d, time.Now()
		}
	}
	return low
}

// diskSampler records the largest diskBytes of a directory while a child
// runs in it.
type diskSampler struct {
	stop chan struct{}
	done chan int64
	once sync.Once
	peak int64
}

func sampleDisk(dir string, every time.Duration) *diskSampler {
	s := &diskSampler{stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		peak := diskBytes(dir)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.done <- max(peak, diskBytes(dir))
				return
			case <-t.C:
				peak = max(peak, diskBytes(dir))
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak; later calls return it again.
func (s *diskSampler) Stop() int64 {
	s.once.Do(func() {
		close(s.stop)
		s.peak = <-s.done
	})
	return s.peak
}

// peakRSS is this process's peak resident set (VmHWM), in bytes.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// percentile returns the p-th percentile (0-100) of sorted durations, by
// nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
