package main

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"
	"strings"
)

// Chart size in pixels and the plot margins inside a panel.
const (
	chartW = 1400
	chartH = 620

	marginLeft   = 96
	marginRight  = 36
	marginTop    = 44
	marginBottom = 70
	textScale    = 2
)

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grid  = color.RGBA{225, 225, 225, 255}
	gray  = color.RGBA{90, 90, 90, 255}

	// palette colours the series in order (Okabe–Ito, readable by most
	// colour-blind readers); markers differ too.
	palette = []color.RGBA{
		{0, 114, 178, 255}, {213, 94, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
		{230, 159, 0, 255}, {86, 180, 233, 255}, {0, 0, 0, 255}, {240, 228, 66, 255},
	}
)

// drawLegend draws one swatch and name per series, centred on row y.
func drawLegend(img *image.RGBA, ss []series, y int) {
	const swatch, gap = 34, 36
	total := 0
	for _, s := range ss {
		total += swatch + 8 + textWidth(s.name, textScale) + gap
	}
	x := (chartW - total + gap) / 2
	for i, s := range ss {
		c := palette[i%len(palette)]
		fillRect(img, x, y+6, swatch, 3, c)
		drawMarker(img, x+swatch/2, y+7, i, c)
		x += swatch + 8
		drawText(img, x, y, s.name, textScale, black)
		x += textWidth(s.name, textScale) + gap
	}
}

// drawPanel draws one panel in r: title, y grid and labels, x ticks at
// the subscriber counts, and a line with markers per series.
func drawPanel(img *image.RGBA, r image.Rectangle, title string, xs []int, ss []series) {
	plot := image.Rect(r.Min.X+marginLeft, r.Min.Y+marginTop, r.Max.X-marginRight, r.Max.Y-marginBottom)
	drawText(img, plot.Min.X+(plot.Dx()-textWidth(title, textScale))/2, r.Min.Y+8, title, textScale, black)

	maxY := 0.0
	for _, s := range ss {
		for _, v := range s.points {
			maxY = math.Max(maxY, v)
		}
	}
	step, top := niceScale(maxY)
	for v := 0.0; v <= top+step/2; v += step {
		y := plot.Max.Y - int(math.Round(v/top*float64(plot.Dy())))
		fillRect(img, plot.Min.X, y, plot.Dx(), 1, grid)
		label := formatNumber(v)
		drawText(img, plot.Min.X-10-textWidth(label, textScale), y-glyphH*textScale/2, label, textScale, gray)
	}

	xAt := func(i int) int {
		if len(xs) == 1 {
			return plot.Min.X + plot.Dx()/2
		}
		const pad = 30
		return plot.Min.X + pad + i*(plot.Dx()-2*pad)/(len(xs)-1)
	}
	for i, x := range xs {
		px := xAt(i)
		fillRect(img, px, plot.Max.Y, 1, 6, black)
		label := formatNumber(float64(x))
		drawText(img, px-textWidth(label, textScale)/2, plot.Max.Y+12, label, textScale, gray)
	}
	axis := "subscribers"
	drawText(img, plot.Min.X+(plot.Dx()-textWidth(axis, textScale))/2, plot.Max.Y+40, axis, textScale, black)
	fillRect(img, plot.Min.X, plot.Min.Y, 2, plot.Dy()+1, black)
	fillRect(img, plot.Min.X, plot.Max.Y, plot.Dx(), 2, black)

	for si, s := range ss {
		c := palette[si%len(palette)]
		prevX, prevY, have := 0, 0, false
		for i := range xs {
			v, ok := s.points[i]
			if !ok {
				have = false // a gap: do not bridge missing measurements
				continue
			}
			px, py := xAt(i), plot.Max.Y-int(math.Round(v/top*float64(plot.Dy())))
			if have {
				drawLine(img, prevX, prevY, px, py, c)
			}
			prevX, prevY, have = px, py, true
		}
		for i := range xs {
			if v, ok := s.points[i]; ok {
				drawMarker(img, xAt(i), plot.Max.Y-int(math.Round(v/top*float64(plot.Dy()))), si, c)
			}
		}
	}
}

// niceScale returns a round grid step and the axis top (a multiple of the
// step, at least max) for about five grid lines.
func niceScale(max float64) (step, top float64) {
	if max <= 0 {
		return 1, 5
	}
	raw := max * 1.05 / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	return step, math.Ceil(max*1.05/step) * step
}

// formatNumber writes v compactly: 250K, 1.5M, 12, 0.25.
func formatNumber(v float64) string {
	trim := func(s string) string {
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		return s
	}
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trim(fmt.Sprintf("%.2f", v/1e6)) + "M"
	case a >= 1e3:
		return trim(fmt.Sprintf("%.1f", v/1e3)) + "K"
	case a == math.Trunc(a):
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return trim(fmt.Sprintf("%.2f", v))
	}
}

// fillRect fills the w×h rectangle at (x, y), clipped to the image.
func fillRect(img *image.RGBA, x, y, w, h int, c color.Color) {
	r := image.Rect(x, y, x+w, y+h).Intersect(img.Bounds())
	for py := r.Min.Y; py < r.Max.Y; py++ {
		for px := r.Min.X; px < r.Max.X; px++ {
			img.Set(px, py, c)
		}
	}
}

// drawLine draws a 3-pixel-wide line from (x0, y0) to (x1, y1).
func drawLine(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		fillRect(img, x0-1, y0-1, 3, 3, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

// drawMarker draws the marker of series i at (x, y): a circle, square,
// diamond or triangle, in turn.
func drawMarker(img *image.RGBA, x, y, i int, c color.Color) {
	const r = 6
	for dy := -r; dy <= r; dy++ {
		for dx := -r; dx <= r; dx++ {
			var in bool
			switch i % 4 {
			case 0:
				in = dx*dx+dy*dy <= r*r
			case 1:
				in = abs(dx) <= r-1 && abs(dy) <= r-1
			case 2:
				in = abs(dx)+abs(dy) <= r+1
			default:
				in = dy >= -r && 2*abs(dx) <= dy+r
			}
			if in {
				img.Set(x+dx, y+dy, c)
			}
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
