package server

import (
	"strings"
	"testing"

	"go.temporal.io/sdk/worker"
)

func TestLoadConfigDeployment(t *testing.T) {
	cfg, err := LoadConfig(nil, baseEnv(EnvDeploymentName, "retrieval", EnvWorkerBuildID, "2026-11-23.1"))
	if err != nil {
		t.Fatal(err)
	}
	want := worker.DeploymentOptions{
		UseVersioning: true,
		Version:       worker.WorkerDeploymentVersion{DeploymentName: "retrieval", BuildID: "2026-11-23.1"},
	}
	if cfg.Deployment != want {
		t.Fatalf("deployment = %+v, want %+v", cfg.Deployment, want)
	}

	cfg, err = LoadConfig(nil, baseEnv())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Deployment.UseVersioning {
		t.Fatalf("no deployment variables must give an unversioned worker, got %+v", cfg.Deployment)
	}
}

func TestLoadConfigDeploymentErrors(t *testing.T) {
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{EnvDeploymentName, "retrieval"}, "TEMPORAL_DEPLOYMENT_NAME is set but TEMPORAL_WORKER_BUILD_ID is not"},
		{[]string{EnvWorkerBuildID, "v2", EnvDeploymentName, "  "}, "TEMPORAL_WORKER_BUILD_ID is set but TEMPORAL_DEPLOYMENT_NAME is not"},
		{[]string{EnvDeploymentName, "retrieval.eu", EnvWorkerBuildID, "v2"}, "must not contain a dot"},
	}
	for _, tt := range tests {
		_, err := LoadConfig(nil, baseEnv(tt.env...))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: error %v, want one containing %q", tt.env, err, tt.want)
		}
	}
}
