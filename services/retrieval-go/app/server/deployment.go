package server

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/worker"
)

// The variables Temporal's worker controller sets on a versioned worker; the
// Python workers read the same two (workerkit/deployment.py).
const (
	EnvDeploymentName = "TEMPORAL_DEPLOYMENT_NAME"
	EnvWorkerBuildID  = "TEMPORAL_WORKER_BUILD_ID"
)

// loadDeployment returns the Worker Deployment Versioning options named by
// the environment: both variables set gives a versioned worker, neither an
// unversioned one (the zero value), one alone is an error. No default
// versioning behaviour is set, so the SDK refuses to register a workflow
// that does not declare its own.
func loadDeployment(env envconfig.EnvLookup) (worker.DeploymentOptions, error) {
	name, _ := env.LookupEnv(EnvDeploymentName)
	buildID, _ := env.LookupEnv(EnvWorkerBuildID)
	name, buildID = strings.TrimSpace(name), strings.TrimSpace(buildID)
	switch {
	case name == "" && buildID == "":
		return worker.DeploymentOptions{}, nil
	case name == "":
		return worker.DeploymentOptions{}, fmt.Errorf("%s is set but %s is not; set both for a versioned worker or neither for an unversioned one", EnvWorkerBuildID, EnvDeploymentName)
	case buildID == "":
		return worker.DeploymentOptions{}, fmt.Errorf("%s is set but %s is not; set both for a versioned worker or neither for an unversioned one", EnvDeploymentName, EnvWorkerBuildID)
	case strings.Contains(name, "."):
		// The server writes a version as "<deployment>.<build id>" and splits at the first dot.
		return worker.DeploymentOptions{}, fmt.Errorf("%s must not contain a dot, got %q", EnvDeploymentName, name)
	}
	return worker.DeploymentOptions{
		UseVersioning: true,
		Version:       worker.WorkerDeploymentVersion{DeploymentName: name, BuildID: buildID},
	}, nil
}
