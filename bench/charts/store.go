package main

// The store-size and storage-concurrency charts, from the figures that
// bench/storeScaling.ts measured.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

type storeSizePoint struct {
	StoredBytes                 float64 `json:"storedBytes"`
	FindMissingDigestsPerSecond float64 `json:"findMissingDigestsPerSecond"`
	BatchReadBlobsPerSecond     float64 `json:"batchReadBlobsPerSecond"`
	VMRSSBytes                  float64 `json:"vmRssBytes"`
	HeapUsedBytes               float64 `json:"heapUsedBytes"`
	ReopenSeconds               float64 `json:"reopenSeconds"`
	ReopenBeforeSeconds         float64 `json:"reopenBeforeSeconds"`
	VMRSSAfterReopenBytes       float64 `json:"vmRssAfterReopenBytes"`
}

type concurrencyPoint struct {
	X     float64 `json:"x"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

type storeFigures struct {
	Date               string           `json:"date"`
	LoadAverageAtStart float64          `json:"loadAverageAtStart"`
	LoadAverageAtEnd   float64          `json:"loadAverageAtEnd"`
	Sizes              []storeSizePoint `json:"sizes"`
	Concurrency        struct {
		AtGib   float64                       `json:"atGib"`
		Figures map[string][]concurrencyPoint `json:"figures"`
	} `json:"concurrency"`
}

// drawStore writes store-size-speed.png, store-size-memory.png,
// store-size-reopen.png and storage-clients.png.
func drawStore(figuresPath, directory string) {
	data, err := os.ReadFile(figuresPath)
	check(err)
	var f storeFigures
	check(json.Unmarshal(data, &f))
	subtitle := fmt.Sprintf("measured %s, load average %.0f-%.0f on 2 cores", f.Date[:10], f.LoadAverageAtStart, f.LoadAverageAtEnd)
	const gib = 1 << 30
	const mib = 1 << 20
	bySize := func(value func(storeSizePoint) float64) plotter.XYs {
		var xys plotter.XYs
		for _, p := range f.Sizes {
			xys = append(xys, plotter.XY{X: p.StoredBytes / gib, Y: value(p)})
		}
		return xys
	}
	sizeAxis := "4 KiB blobs stored (GiB)"
	drawLines(filepath.Join(directory, "store-size-speed.png"),
		"FindMissingBlobs and BatchReadBlobs against store size\n"+subtitle, sizeAxis, "thousands per second",
		[]string{"FindMissingBlobs, k digests/s", "BatchReadBlobs, k blobs/s"},
		[]plotter.XYs{
			bySize(func(p storeSizePoint) float64 { return p.FindMissingDigestsPerSecond / 1000 }),
			bySize(func(p storeSizePoint) float64 { return p.BatchReadBlobsPerSecond / 1000 }),
		}, false)
	drawLines(filepath.Join(directory, "store-size-memory.png"),
		"granary serve's memory against store size\n"+subtitle, sizeAxis, "MiB",
		[]string{"resident (VmRSS) after the reads", "resident just after a restart", "V8 heap used"},
		[]plotter.XYs{
			bySize(func(p storeSizePoint) float64 { return p.VMRSSBytes / mib }),
			bySize(func(p storeSizePoint) float64 { return p.VMRSSAfterReopenBytes / mib }),
			bySize(func(p storeSizePoint) float64 { return p.HeapUsedBytes / mib }),
		}, false)
	reopenLegends := []string{"restart"}
	reopenSeries := []plotter.XYs{bySize(func(p storeSizePoint) float64 { return p.ReopenSeconds })}
	if len(f.Sizes) > 0 && f.Sizes[0].ReopenBeforeSeconds > 0 {
		// Measured with --before-granary: the build before index files, on the same data just before.
		reopenLegends = []string{"restart with index files", "restart reading every segment (before)"}
		reopenSeries = append(reopenSeries, bySize(func(p storeSizePoint) float64 { return p.ReopenBeforeSeconds }))
	}
	drawLines(filepath.Join(directory, "store-size-reopen.png"),
		"Time for granary serve to restart on the store\n"+subtitle, sizeAxis, "seconds to serving",
		reopenLegends, reopenSeries, false)

	labels := []string{"batch-update", "find-missing", "batch-read", "get-action-result"}
	var series []plotter.XYs
	var legends []string
	for _, label := range labels {
		points := f.Concurrency.Figures[label]
		var xys plotter.XYs
		unit := ""
		for _, p := range points {
			xys = append(xys, plotter.XY{X: p.X, Y: p.Value / 1000})
			unit = p.Unit
		}
		series = append(series, xys)
		legends = append(legends, fmt.Sprintf("%s, k %s", label, unit))
	}
	drawLines(filepath.Join(directory, "storage-clients.png"),
		fmt.Sprintf("Storage calls against requests in flight (store of %g GiB)\n%s", f.Concurrency.AtGib, subtitle),
		"requests in flight (log scale)", "thousands per second (log scale)", legends, series, true)
}

// drawLines charts the series against x: on log scales, or linear from 0; either way with room above the lines for the legend.
func drawLines(path, title, xLabel, yLabel string, legends []string, series []plotter.XYs, logScales bool) {
	p := newChart(title, xLabel, yLabel)
	if logScales {
		p.X.Scale = plot.LogScale{}
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.X.Tick.Marker = ticksAtMeasuredX(series)
	} else {
		p.Y.Min = 0
		p.X.Min = 0
	}
	low, high := 0.0, 0.0
	for i, xys := range series {
		for j, pt := range xys {
			if (i == 0 && j == 0) || pt.Y < low {
				low = pt.Y
			}
			high = max(high, pt.Y)
		}
	}
	if logScales {
		p.Y.Min, p.Y.Max = low/1.5, high*12
	} else {
		p.Y.Max = high * 1.45
	}
	saveLines(p, path, legends, series)
}
