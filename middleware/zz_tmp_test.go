package middleware_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"

	"github.com/smartratelimit/smartratelimit/middleware"
)

var thrashBuf = make([]byte, 1<<20)
var sinkS string
var reTmp = regexp.MustCompile(`^(\w+)@(\w+)\.com$`)

func thrash() {
	for i := 0; i < len(thrashBuf); i += 64 {
		thrashBuf[i]++
	}
	b, _ := json.Marshal(map[string]any{"a": 1, "b": []int{1, 2, 3}, "c": "x"})
	var m map[string]any
	json.Unmarshal(b, &m)
	s := []int{5, 3, 1, 4}
	slices.Sort(s)
	sinkS = fmt.Sprintf("%v%v%v", m, s, reTmp.MatchString("ab@cd.com"))
}

func BenchmarkTmpCold(b *testing.B) {
	bare := resty.New().SetTransport(githubTransport{})
	l, err := middleware.New(huge)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	limited := l.Attach(resty.New().SetTransport(githubTransport{}))
	send := func(c *resty.Client) time.Duration {
		thrash()
		start := time.Now()
		resp, err := c.R().Get("https://api.example.com/x")
		d := time.Since(start)
		if err != nil || resp.StatusCode() != 200 {
			b.Fatal(err, resp)
		}
		return d
	}
	send(bare)
	send(limited)
	var tb, tl []time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			tb = append(tb, send(bare))
			tl = append(tl, send(limited))
		} else {
			tl = append(tl, send(limited))
			tb = append(tb, send(bare))
		}
		i++
	}
	slices.Sort(tb)
	slices.Sort(tl)
	mb, ml := tb[len(tb)/2], tl[len(tl)/2]
	b.ReportMetric(float64(mb), "bare-ns")
	b.ReportMetric(float64(ml-mb), "hook-ns")
}
