// Draws the execution-scaling charts of docs/performance.md from the figures
// that bench/executionScaling.ts measured (a JSON file), so the pictures always
// show measured numbers and can be redrawn from them.
//
// Usage: go run . FIGURES.json OUTPUT_DIRECTORY
// Writes execution-clients.png and execution-slots.png.
//
//	go run . store STORE-FIGURES.json OUTPUT_DIRECTORY
//
// draws the store-size and storage-concurrency charts (see store.go).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

type point struct {
	X                float64 `json:"x"`
	ActionsPerSecond float64 `json:"actionsPerSecond"`
	P50Ms            float64 `json:"p50Ms"`
}

type figures struct {
	Date               string             `json:"date"`
	LoadAverageAtStart float64            `json:"loadAverageAtStart"`
	LoadAverageAtEnd   float64            `json:"loadAverageAtEnd"`
	Clients            map[string][]point `json:"clients"`
	Slots              []point            `json:"slots"`
	Workers            []point            `json:"workers"`
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "store" {
		drawStore(os.Args[2], os.Args[3])
		return
	}
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run . FIGURES.json OUTPUT_DIRECTORY, or go run . store STORE-FIGURES.json OUTPUT_DIRECTORY")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	check(err)
	var f figures
	check(json.Unmarshal(data, &f))
	subtitle := fmt.Sprintf("measured %s, load average %.0f-%.0f on 2 cores", f.Date[:10], f.LoadAverageAtStart, f.LoadAverageAtEnd)

	labels := make([]string, 0, len(f.Clients))
	for label := range f.Clients {
		labels = append(labels, label)
	}
	sort.Strings(labels)
	series := map[string][]point{}
	for _, label := range labels {
		series[label] = f.Clients[label]
	}
	draw(filepath.Join(os.Args[2], "execution-clients.png"),
		"Trivial actions/s against concurrent clients (2 slots)\n"+subtitle,
		"concurrent clients (log scale)", labels, series, true)
	slotSeries := map[string][]point{"one worker, N slots": f.Slots}
	slotLabels := []string{"one worker, N slots"}
	if len(f.Workers) > 0 {
		slotSeries["N workers, 1 slot each"] = f.Workers
		slotLabels = append(slotLabels, "N workers, 1 slot each")
	}
	draw(filepath.Join(os.Args[2], "execution-slots.png"),
		"Granary: trivial actions/s against execution slots (16 in flight)\n"+subtitle,
		"execution slots N (log scale)", slotLabels, slotSeries, true)
}

// draw charts actions/s (from 0) against x, one line per label.
func draw(path, title, xLabel string, labels []string, series map[string][]point, logX bool) {
	xys := make([]plotter.XYs, len(labels))
	for i, label := range labels {
		for _, pt := range series[label] {
			xys[i] = append(xys[i], plotter.XY{X: pt.X, Y: pt.ActionsPerSecond})
		}
	}
	p := newChart(title, xLabel, "actions/s")
	p.Y.Min = 0
	if logX {
		p.X.Scale = plot.LogScale{}
	}
	p.X.Tick.Marker = ticksAtMeasuredX(xys)
	saveLines(p, path, labels, xys)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
