package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"gomta/mta/config"
	"gomta/session/metrics"
)

// metricsServer serves /metrics, the process's metrics in the Prometheus
// text format, on its own listener: one actor of the run group.
type metricsServer struct {
	srv *http.Server
	ln  net.Listener
}

// newMetrics builds the process's metrics and opens their listener when an
// address is set (-metrics, else [gomta] metrics_listen); with none it
// returns nils and nothing is counted. A bad -metrics address is an error
// (the config's was checked at load).
func newMetrics(flagAddr string, cfg *config.Config, log *zap.Logger) (*metrics.Metrics, *metricsServer, error) {
	addr := cfg.MetricsListen
	if flagAddr != "" {
		if err := config.CheckMetricsListen(flagAddr); err != nil {
			return nil, nil, fmt.Errorf("-metrics: %w", err)
		}
		addr = flagAddr
	}
	if addr == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	if config.MetricsBeyondLoopback(addr) {
		log.Warn("metrics served beyond loopback, without authentication", zap.String("addr", addr))
	}
	m := metrics.New()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute}
	return m, &metricsServer{srv: srv, ln: ln}, nil
}

func (s *metricsServer) execute(log *zap.Logger) func() error {
	return func() error {
		log.Info("metrics listening", zap.Stringer("addr", s.ln.Addr()))
		if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics: %w", err)
		}
		return nil
	}
}

func (s *metricsServer) interrupt(error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.srv.Shutdown(ctx) //nolint:errcheck // closing at exit
}
