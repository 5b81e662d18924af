package main

import (
	"math"
	"slices"
	"time"
)

// Summary is a distribution of durations, in seconds.
type Summary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	// Samples are every value, sorted, for plots and later analysis.
	Samples []float64 `json:"samples,omitempty"`
}

// summarize takes the nearest-rank percentiles of ds.
func summarize(ds []time.Duration) Summary {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = d.Seconds()
	}
	slices.Sort(xs)
	s := Summary{N: len(xs), Samples: xs}
	if len(xs) == 0 {
		return s
	}
	s.P50, s.P90, s.P99 = percentile(xs, 50), percentile(xs, 90), percentile(xs, 99)
	s.Max = xs[len(xs)-1]
	return s
}

// percentile of sorted xs by nearest rank.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(xs))))
	return xs[min(max(rank, 1), len(xs))-1]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return percentile(s, 50)
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
