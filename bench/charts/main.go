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
	"image/color"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
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

var palette = []color.RGBA{
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
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

func draw(path, title, xLabel string, labels []string, series map[string][]point, logX bool) {
	// A run may measure only some curves (executionScaling's --curves).
	total := 0
	for _, label := range labels {
		total += len(series[label])
	}
	if total == 0 {
		fmt.Fprintf(os.Stderr, "%s: no figures, not drawn\n", path)
		return
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = "actions/s"
	p.Y.Min = 0
	if logX {
		p.X.Scale = plot.LogScale{}
	}
	// A labelled tick at every measured x (1, 2, 4, 8 or 1, 8, 64).
	var ticks []plot.Tick
	seen := map[float64]bool{}
	for _, label := range labels {
		for _, pt := range series[label] {
			if !seen[pt.X] {
				seen[pt.X] = true
				ticks = append(ticks, plot.Tick{Value: pt.X, Label: fmt.Sprintf("%g", pt.X)})
			}
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	for i, label := range labels {
		var xys plotter.XYs
		for _, pt := range series[label] {
			xys = append(xys, plotter.XY{X: pt.X, Y: pt.ActionsPerSecond})
		}
		line, points, err := plotter.NewLinePoints(xys)
		check(err)
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(2)
		points.Color = palette[i%len(palette)]
		p.Add(line, points)
		p.Legend.Add(label, line, points)
	}
	check(p.Save(7*vg.Inch, 4.5*vg.Inch, path))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
