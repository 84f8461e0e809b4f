package usage

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"
)

// WriteCSV writes s as CSV: one row per bucket, times in the series' zone
// with their offset (RFC 3339), registers in the unit of the series' kind
// (columns consumption_wh, export_wh, last_import_wh; for water meters
// consumption_l, export_l, last_import_l in litres), power in W.
func WriteCSV(w io.Writer, s Series) error {
	cw := csv.NewWriter(w)
	u := strings.ToLower(s.Kind.Unit())
	_ = cw.Write([]string{"bucket_start", "bucket_end", "consumption_" + u, "export_" + u, "avg_power_w", "max_power_w", "last_import_" + u, "samples"})
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	f := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', 1, 64)
	}
	for _, p := range s.Points {
		last := ""
		if p.LastImportWh != nil {
			last = strconv.FormatInt(*p.LastImportWh, 10)
		}
		_ = cw.Write([]string{
			p.Start.In(loc).Format(time.RFC3339), p.End.In(loc).Format(time.RFC3339),
			strconv.FormatInt(p.ConsumptionWh, 10), strconv.FormatInt(p.ExportWh, 10),
			f(p.AvgPowerW), f(p.MaxPowerW), last, strconv.FormatInt(p.Samples, 10),
		})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("usage csv: %w", err)
	}
	return nil
}

// maxBars is the most buckets drawn as bars; longer series are drawn as
// a line.
const maxBars = 62

var barColor = drawing.Color{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}

// SVG renders s as an SVG chart of consumption per bucket in kWh, or kL
// for water meters (the axis names the unit): bars
// for up to 62 buckets, a line beyond. The Y axis starts at zero (go-chart
// otherwise starts it at the smallest value, drawing the lowest bar with
// no height).
func SVG(s Series, title string) ([]byte, error) {
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	top := 0.0
	for _, p := range s.Points {
		top = math.Max(top, float64(p.ConsumptionWh)/1000)
	}
	if top == 0 {
		top = 1
	}
	yRange := &chart.ContinuousRange{Min: 0, Max: top * 1.1}
	yAxis := chart.YAxis{Name: s.Kind.KiloUnit(), Range: yRange, ValueFormatter: func(v any) string {
		if f, ok := v.(float64); ok {
			return strconv.FormatFloat(f, 'f', 1, 64)
		}
		return ""
	}}
	var buf bytes.Buffer
	if len(s.Points) <= maxBars {
		bars := make([]chart.Value, len(s.Points))
		for i, p := range s.Points {
			bars[i] = chart.Value{
				Label: label(p.Start.In(loc), s.Granularity),
				Value: float64(p.ConsumptionWh) / 1000,
				Style: chart.Style{FillColor: barColor, StrokeColor: barColor},
			}
		}
		width := max(640, 60+len(bars)*28)
		bc := chart.BarChart{
			Title:      title,
			Width:      width,
			Height:     360,
			BarWidth:   max(8, (width-120)/max(1, len(bars))-6),
			Background: chart.Style{Padding: chart.Box{Top: 40, Left: 20, Right: 20, Bottom: 20}},
			XAxis:      chart.Style{TextRotationDegrees: 45, FontSize: 8},
			YAxis:      yAxis,
			Bars:       bars,
		}
		if err := bc.Render(chart.SVG, &buf); err != nil {
			return nil, fmt.Errorf("usage chart: %w", err)
		}
		return buf.Bytes(), nil
	}
	xs := make([]time.Time, len(s.Points))
	ys := make([]float64, len(s.Points))
	for i, p := range s.Points {
		xs[i], ys[i] = p.Start, float64(p.ConsumptionWh)/1000
	}
	c := chart.Chart{
		Title:  title,
		Width:  960,
		Height: 360,
		XAxis: chart.XAxis{ValueFormatter: func(v any) string {
			if f, ok := v.(float64); ok {
				return label(chart.TimeFromFloat64(f).In(loc), s.Granularity)
			}
			return ""
		}},
		YAxis: yAxis,
		Series: []chart.Series{chart.TimeSeries{
			XValues: xs, YValues: ys,
			Style: chart.Style{StrokeColor: barColor, FillColor: barColor.WithAlpha(64)},
		}},
	}
	if err := c.Render(chart.SVG, &buf); err != nil {
		return nil, fmt.Errorf("usage chart: %w", err)
	}
	return buf.Bytes(), nil
}

func label(t time.Time, g Granularity) string {
	switch g {
	case Hour:
		return t.Format("02 Jan 15:04")
	case Month:
		return t.Format("Jan 2006")
	}
	return t.Format("02 Jan")
}
