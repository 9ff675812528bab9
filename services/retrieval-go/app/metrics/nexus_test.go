package metrics

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nexus-rpc/sdk-go/nexus"
)

func TestNexusOutcome(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no error", nil, "ok"},
		{"bad request", &nexus.HandlerError{Type: nexus.HandlerErrorTypeBadRequest}, "bad_request"},
		{"wrapped not found", fmt.Errorf("lookup: %w", &nexus.HandlerError{Type: nexus.HandlerErrorTypeNotFound}), "not_found"},
		{"operation failed", &nexus.OperationError{State: nexus.OperationStateFailed}, "operation_failed"},
		{"operation canceled", &nexus.OperationError{State: nexus.OperationStateCanceled}, "operation_canceled"},
		{"deadline", fmt.Errorf("search: %w", context.DeadlineExceeded), "task_canceled"},
		{"anything else", errors.New("disk full"), "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NexusOutcome(tt.err); got != tt.want {
				t.Errorf("NexusOutcome(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
