package projection

import (
	"errors"
	"fmt"
	"time"

	"github.com/kgraph-dev/kgraph/libs/envconf"
)

// ReadConfig reads the service's settings. KG_JOB_RETENTION=0 keeps job
// records forever. The concurrency is the host's to read: the binary
// takes KG_CONCURRENCY; kg serve, whose services share one environment,
// keeps the default.
func ReadConfig(env *envconf.Reader) (Config, error) {
	cfg := Config{
		Concurrency:       8,
		SchedulerInterval: env.Duration("KG_SCHEDULER_INTERVAL", DefaultSchedulerInterval),
		ApprovalTTL:       env.Duration("KG_APPROVAL_TTL", DefaultApprovalTTL),
		Retention:         env.Duration("KG_JOB_RETENTION", DefaultRetention),
	}
	var errs []error
	if cfg.SchedulerInterval < time.Second {
		errs = append(errs, fmt.Errorf("KG_SCHEDULER_INTERVAL=%s must be at least 1s", cfg.SchedulerInterval))
	}
	if cfg.ApprovalTTL <= 0 {
		errs = append(errs, fmt.Errorf("KG_APPROVAL_TTL=%s must be positive", cfg.ApprovalTTL))
	}
	switch {
	case cfg.Retention < 0:
		errs = append(errs, fmt.Errorf("KG_JOB_RETENTION=%s must not be negative (0 keeps job records forever)", cfg.Retention))
	case cfg.Retention == 0:
		cfg.Retention = RetainForever
	}
	return cfg, errors.Join(errs...)
}
