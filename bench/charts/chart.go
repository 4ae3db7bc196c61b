package main

// What every chart here shares: the palette, a titled plot with its legend at
// the top left over a grid, coloured lines with points, ticks at the measured
// x values, and the size of the saved picture.

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var palette = []color.RGBA{
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

// newChart is an empty plot with these titles, its legend at the top left, over a grid.
func newChart(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

// ticksAtMeasuredX labels every x that some series measured (1, 2, 4, 8 or 1, 8, 64), in the order first seen.
func ticksAtMeasuredX(series []plotter.XYs) plot.ConstantTicks {
	var ticks []plot.Tick
	seen := map[float64]bool{}
	for _, xys := range series {
		for _, pt := range xys {
			if !seen[pt.X] {
				seen[pt.X] = true
				ticks = append(ticks, plot.Tick{Value: pt.X, Label: fmt.Sprintf("%g", pt.X)})
			}
		}
	}
	return plot.ConstantTicks(ticks)
}

// saveLines adds each series as a line with points, in the palette's colours and
// named in the legend, and writes the chart to path.
func saveLines(p *plot.Plot, path string, legends []string, series []plotter.XYs) {
	for i, xys := range series {
		line, points, err := plotter.NewLinePoints(xys)
		check(err)
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(2)
		points.Color = palette[i%len(palette)]
		p.Add(line, points)
		p.Legend.Add(legends[i], line, points)
	}
	check(p.Save(7*vg.Inch, 4.5*vg.Inch, path))
}
