// Package metricstest reads Prometheus metrics for tests: it scrapes a
// /metrics URL with a real HTTP client and parses the text format with
// Prometheus's own parser (expfmt), or gathers a registry, and finds one
// sample by name and labels.
package metricstest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are parsed metric families by name.
type Families map[string]*dto.MetricFamily

// Scrape GETs url (asking for the text format, as Prometheus falls back to)
// and parses the reply; any failure fails the test.
func Scrape(t testing.TB, url string) Families {
	t.Helper()
	fams, err := ScrapeErr(url)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// ScrapeErr is Scrape returning its error, for polling.
func ScrapeErr(url string) (Families, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("GET %s: Content-Type %q, want the text format", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: parse: %w", url, err)
	}
	return fams, nil
}

// Gather collects g (a registry) into Families; an error fails the test.
func Gather(t testing.TB, g prometheus.Gatherer) Families {
	t.Helper()
	list, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	fams := Families{}
	for _, f := range list {
		fams[f.GetName()] = f
	}
	return fams
}

// Value is the value of the sample of family name whose labels include
// labels ("k", "v", ...): a counter's or gauge's value, a histogram's
// sample count. ok is false when there is no such sample.
func (f Families) Value(name string, labels ...string) (v float64, ok bool) {
	fam := f[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// Get is Value that fails the test when the sample is missing.
func (f Families) Get(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, ok := f.Value(name, labels...)
	if !ok {
		t.Fatalf("no sample %s%v among %s", name, labels, f.names())
	}
	return v
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (f Families) names() string {
	names := make([]string, 0, len(f))
	for n := range f {
		if strings.HasPrefix(n, "gomta_") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}
