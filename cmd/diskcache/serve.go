package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/resp"
)

// version is the server's version, as INFO reports it; set with
// -ldflags "-X main.version=...".
var version = "dev"

type serveOptions struct {
	addr        string
	password    string
	metricsAddr string
	sizeLimit   int64
	maxClients  int
}

func (a *app) serveCommand() *cobra.Command {
	o := serveOptions{addr: "127.0.0.1:6380", sizeLimit: 1 << 30}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the cache over the Redis protocol",
		Long: `Serve the cache to Redis clients (redis-cli, redis-py, ioredis, go-redis...) on
--addr. It binds the loopback interface unless told otherwise; --password
(or the DISKCACHE_PASSWORD environment variable, which keeps it out of ps)
makes clients AUTH first. SIGINT or SIGTERM stops accepting, lets the
commands in flight finish and closes the cache cleanly.

With --metrics-addr, Prometheus metrics are served at /metrics there.`,
		Example: `  diskcache serve --dir /var/cache/app --size-limit 8GiB
  diskcache serve --addr 0.0.0.0:6380 --password "$SECRET" --metrics-addr 127.0.0.1:9090`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.serve(o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", o.addr, "TCP address to serve the Redis protocol on")
	f.StringVar(&o.password, "password", o.password, "password clients must AUTH with; $DISKCACHE_PASSWORD if not given")
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "address to serve Prometheus metrics on (/metrics); none if empty")
	f.Var(sizeFlag{&o.sizeLimit}, "size-limit", "most bytes the cache keeps on disk")
	f.IntVar(&o.maxClients, "max-clients", resp.DefaultMaxClients, "most clients served at once")
	return cmd
}

func (a *app) serve(o serveOptions) error {
	if o.password == "" {
		o.password = os.Getenv("DISKCACHE_PASSWORD")
	}
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(a.ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one kills at once.
		<-ctx.Done()
		stop()
	}()

	c, err := engine.Open(a.dir, &engine.Options{SizeLimit: o.sizeLimit, Logger: log})
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if o.password == "" && !isLoopback(ln.Addr()) {
		log.Warn("serving a non-loopback address without a password: anyone who can reach it can read and write the cache", "addr", ln.Addr().String())
	}

	cfg := resp.Config{Password: o.password, MaxClients: o.maxClients, Logger: log, Version: version}
	var metricsSrv *http.Server
	metricsErr := make(chan error, 1)
	if o.metricsAddr != "" {
		m := newMetrics(c.Stats)
		cfg.Observer = m
		mln, err := net.Listen("tcp", o.metricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("serve: metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { metricsErr <- metricsSrv.Serve(mln) }()
		log.Info("diskcache metrics", "metrics", "http://"+mln.Addr().String()+"/metrics")
	}

	log.Info("diskcache serving", "addr", ln.Addr().String(), "dir", c.Dir(), "size_limit", formatSize(o.sizeLimit), "auth", o.password != "")
	serveErr := c.Serve(ctx, ln, cfg)
	if metricsSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		metricsSrv.Shutdown(sctx)
		cancel()
	}
	if err := c.Close(); err != nil && serveErr == nil {
		serveErr = err
	}
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	log.Info("diskcache stopped", "dir", c.Dir())
	return nil
}

func isLoopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
