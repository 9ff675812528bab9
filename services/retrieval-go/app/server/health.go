package server

import (
	"net/http"
	"sync/atomic"
)

// State is the worker's life-cycle stage as reported by /readyz.
type State int32

const (
	StateStarting State = iota
	StateReady
	StateStopping
)

func (s State) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateReady:
		return "ready"
	case StateStopping:
		return "stopping"
	}
	return "unknown"
}

// Health tracks the worker's state for the probes. The zero value is
// StateStarting.
type Health struct {
	state atomic.Int32
}

// Set records a new state.
func (h *Health) Set(s State) { h.state.Store(int32(s)) }

// State returns the current state.
func (h *Health) State() State { return State(h.state.Load()) }

// Handler serves the probes. /healthz answers 200 while the process is up,
// for liveness; /readyz answers 200 only while the worker is polling its task
// queue, so the dev stack and Kubernetes send no traffic to a worker that is
// still connecting or already draining.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		s := h.State()
		code := http.StatusServiceUnavailable
		if s == StateReady {
			code = http.StatusOK
		}
		writeText(w, code, s.String())
	})
	return mux
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body + "\n"))
}
