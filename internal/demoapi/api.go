// Package demoapi is the seeds' Go service ("jiameng-api"): the app the lab
// rolls out. It can shut down gracefully (package graceful) or misbehave on
// purpose, exiting the moment SIGTERM arrives like the seeds' pods did.
package demoapi

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxSlow caps /slow so a typo cannot park a request for hours.
const MaxSlow = 10 * time.Minute

// Identity names this replica and the version it runs.
type Identity struct {
	Service string // "jiameng-api"
	Version string // what / and /version answer
	Replica string // X-Served-By: POD_NAME, else POD_IP, else hostname
}

// ReplicaFromEnv picks the replica name the way a pod would.
func ReplicaFromEnv() string {
	for _, k := range []string{"POD_NAME", "POD_IP"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	h, _ := os.Hostname()
	return h
}

// New builds the Echo app. ready serves /readyz (graceful's handler).
func New(id Identity, ready http.Handler) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "demo_api_requests_total", Help: "Requests served, by route and status code.",
	}, []string{"route", "code"})
	reg.MustRegister(reqs, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))

	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("X-Served-By", id.Replica)
			h.Set("X-Version", id.Version)
			err := next(c)
			if err != nil {
				c.Error(err) // write the error now so the counter sees its status
			}
			reqs.WithLabelValues(c.Path(), strconv.Itoa(c.Response().Status)).Inc()
			return nil
		}
	})
	e.GET("/", func(c echo.Context) error {
		return c.String(http.StatusOK, fmt.Sprintf("%s %s\n", id.Service, id.Version))
	})
	e.GET("/version", func(c echo.Context) error { return c.String(http.StatusOK, id.Version+"\n") })
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", echo.WrapHandler(ready))
	e.GET("/slow", slow)
	// POST too, for the lab's nginx-ingress topology: nginx retries an
	// idempotent request on another pod, never a POST already sent.
	e.POST("/slow", slow)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	return e
}

// slow answers after ms milliseconds, for in-flight tests. The wait ends
// early if the client goes away.
func slow(c echo.Context) error {
	ms, err := strconv.Atoi(c.QueryParam("ms"))
	if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > MaxSlow {
		return echo.NewHTTPError(http.StatusBadRequest,
			fmt.Sprintf("ms=%q: want an integer from 0 to %d", c.QueryParam("ms"), MaxSlow.Milliseconds()))
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return c.String(http.StatusOK, fmt.Sprintf("slept %dms\n", ms))
	case <-c.Request().Context().Done():
		return nil
	}
}
