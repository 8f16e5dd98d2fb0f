// Command profd is mtad with net/http/pprof on a loopback port, for profiling
// the daemon under bench/peers.sh's load (`go tool pprof
// http://127.0.0.1:6061/debug/pprof/profile?seconds=10`). It is a bench-only
// tool: it wires hosts exactly as mtad does (mta.NewHost, one run group) but
// has none of mtad's flags beyond -config, -data and -pprof. Not for production.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof" // the profiling endpoints, on -pprof only
	"os"
	"runtime"
	"syscall"

	"github.com/oklog/run"
	"go.uber.org/zap"

	"gomta/mta"
)

func main() { os.Exit(realMain()) }

func realMain() int {
	config := flag.String("config", "", "config `FILE` (e.g. the one bench/peers.sh writes)")
	data := flag.String("data", "", "data `DIR` (default: the config's data_dir)")
	addr := flag.String("pprof", "127.0.0.1:6061", "pprof HTTP `ADDR` (loopback)")
	flag.Parse()
	log, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, "profd:", err)
		return 2
	}
	defer log.Sync() //nolint:errcheck // exiting anyway
	cfg, err := mta.Load(*config, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "profd:", err)
		return 1
	}
	if *data != "" {
		cfg.DataDir = *data
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	runtime.SetMutexProfileFraction(100)
	runtime.SetBlockProfileRate(100000)
	var g run.Group
	g.Add(run.SignalHandler(context.Background(), syscall.SIGINT, syscall.SIGTERM))
	for _, s := range cfg.Servers {
		h, err := mta.NewHost(cfg, s, mta.DataDir(cfg.DataDir, s), nil, log) // no TLS
		if err != nil {
			fmt.Fprintln(os.Stderr, "profd:", err)
			return 1
		}
		defer h.Close()
		for _, a := range h.Actors() {
			g.Add(a.Execute, a.Interrupt)
		}
	}
	srv := &http.Server{Addr: *addr}
	g.Add(func() error { return srv.ListenAndServe() }, func(error) { _ = srv.Close() })
	if err := g.Run(); err != nil && !errors.Is(err, run.ErrSignal) {
		log.Error("profd stopped", zap.Error(err))
		return 1
	}
	return 0
}
