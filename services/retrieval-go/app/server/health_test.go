package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthProbes(t *testing.T) {
	tests := []struct {
		state               State
		wantHealth, wantRdy int
	}{
		{StateStarting, http.StatusOK, http.StatusServiceUnavailable},
		{StateReady, http.StatusOK, http.StatusOK},
		{StateStopping, http.StatusOK, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.state.String(), func(t *testing.T) {
			var h Health
			h.Set(tt.state)
			srv := httptest.NewServer(h.Handler())
			defer srv.Close()
			for path, want := range map[string]int{"/healthz": tt.wantHealth, "/readyz": tt.wantRdy} {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
				}
			}
		})
	}
}

func TestHealthProbesRejectOtherMethodsAndPaths(t *testing.T) {
	var h Health
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/readyz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /readyz = %d, want 405", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET / = %d, want 404", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if body := rec.Body.String(); !strings.Contains(body, "starting") {
		t.Errorf("readyz body %q should say the worker is starting", body)
	}
}
