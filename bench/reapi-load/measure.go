// `reapi-load measure`: runs one figure once against one server and prints
// the result as one JSON line. The orchestrator (bench/sideBySide.ts) calls it
// once per figure, server and round, interleaving the servers.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// measurement is what one run of one figure prints.
type measurement struct {
	Figure string  `json:"figure"`
	Unit   string  `json:"unit"`
	Value  float64 `json:"value"`
	// Seconds is the measured wall-clock time; ClientCPUSeconds the CPU this
	// client used meanwhile (1.0 per second = one core busy).
	Seconds          float64 `json:"seconds"`
	ClientCPUSeconds float64 `json:"clientCpuSeconds"`
	// ServerCPUSeconds is the CPU the --server-pids processes used meanwhile.
	ServerCPUSeconds *float64 `json:"serverCpuSeconds,omitempty"`
	P50Ms            *float64 `json:"p50Ms,omitempty"`
	P99Ms            *float64 `json:"p99Ms,omitempty"`
	Detail           string   `json:"detail"`
}

type measureOptions struct {
	duration    time.Duration
	concurrency int
	largeBlobs  int
	actionCount int
	warmUp      bool
	serverPIDs  []int
}

type figure func(ctx context.Context, s *session, options measureOptions) (measurement, error)

var figures = map[string]figure{
	"batch-update": batchUpdateFigure,
	"find-missing": findMissingFigure,
	"batch-read":   batchReadFigure,
	"write-16k": func(ctx context.Context, s *session, o measureOptions) (measurement, error) {
		return writeFigure(ctx, s, o, 16<<10)
	},
	"write-1m": func(ctx context.Context, s *session, o measureOptions) (measurement, error) {
		return writeFigure(ctx, s, o, 1<<20)
	},
	"read":              readFigure,
	"get-action-result": getActionResultFigure,
	"execute":           executeFigure,
}

func runMeasure(arguments []string) error {
	flags := flag.NewFlagSet("measure", flag.ContinueOnError)
	url := flags.String("target", "", "server, grpc://HOST:PORT[/INSTANCE]")
	name := flags.String("figure", "", "figure to measure")
	durationMs := flags.Int("duration-ms", 2000, "measured time of the time-bounded figures")
	concurrency := flags.Int("concurrency", 0, "requests in flight (0: the figure's default)")
	largeBlobs := flags.Int("blobs", 2, "64 MiB blobs written or read by the ByteStream figures")
	actionCount := flags.Int("actions", 200, "actions executed by the execute figure")
	warmUp := flags.Bool("warm-up", false, "a short run whose figure is thrown away")
	pidList := flags.String("server-pids", "", "comma-separated process IDs whose CPU time counts as the server's")
	if err := flags.Parse(arguments); err != nil {
		return err
	}
	t, err := parseTarget(*url)
	if err != nil {
		return err
	}
	run, ok := figures[*name]
	if !ok {
		return fmt.Errorf("unknown figure %q", *name)
	}
	serverPIDs, err := parsePIDs(*pidList)
	if err != nil {
		return err
	}
	options := measureOptions{
		duration:    time.Duration(*durationMs) * time.Millisecond,
		concurrency: *concurrency,
		largeBlobs:  *largeBlobs,
		actionCount: *actionCount,
		warmUp:      *warmUp,
		serverPIDs:  serverPIDs,
	}
	if options.warmUp {
		options.duration = min(options.duration, 300*time.Millisecond)
		options.largeBlobs = 1
		options.actionCount = min(options.actionCount, 16)
	}
	s, err := openSession(t)
	if err != nil {
		return err
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	result, err := run(ctx, s, options)
	if err != nil {
		return fmt.Errorf("%s against %s: %w", *name, *url, err)
	}
	result.Figure = *name
	return json.NewEncoder(os.Stdout).Encode(result)
}

// concurrencyOr is the requested concurrency, or the figure's default.
func (o measureOptions) concurrencyOr(fallback int) int {
	if o.concurrency > 0 {
		return o.concurrency
	}
	return fallback
}

// untilDeadline calls step from `concurrency` goroutines, each with its own
// job index taken in turn, until the deadline passes or there are no jobs
// left; it returns how many jobs completed and the first error.
func untilDeadline(deadline time.Time, concurrency, jobs int, step func(worker, job int) error) (int, error) {
	var next, done atomic.Int64
	var firstError error
	var once sync.Once
	var group sync.WaitGroup
	for worker := range concurrency {
		group.Add(1)
		go func() {
			defer group.Done()
			for time.Now().Before(deadline) {
				job := int(next.Add(1) - 1)
				if job >= jobs {
					return
				}
				if err := step(worker, job); err != nil {
					once.Do(func() { firstError = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	group.Wait()
	return int(done.Load()), firstError
}

// newMeter starts a meter that also counts the server's CPU time.
func (o measureOptions) newMeter() meter { return meter{serverPIDs: o.serverPIDs} }

func rate(units float64, m meter) float64 {
	if m.seconds <= 0 {
		return 0
	}
	return units / m.seconds
}
