package events

import "time"

// The scheduler contract: the projection runs a scheduler that expires jobs
// waiting for approval too long and purges old finished job records. It
// answers over NATS request/reply (a NATS micro service named
// SchedulerServiceName) on two subjects:
//
//	SchedulerStatusSubject   any request; replies SchedulerStatus
//	SchedulerCleanupSubject  SchedulerCleanupRequest (an empty request is
//	                         {}); runs expiry and retention at once and
//	                         replies SchedulerCleanupReply
//
// A failure is a NATS service error whose code is an HTTP status
// (Nats-Service-Error-Code, Nats-Service-Error headers), as for queries.
// With several projection replicas, every replica runs the scheduler and
// one of them answers each request, so the status is that replica's.

// Scheduler service name and subjects (core NATS, no stream).
const (
	SchedulerServiceName    = "kgraph-scheduler"
	SchedulerStatusSubject  = "kgraph.svc.scheduler.status"
	SchedulerCleanupSubject = "kgraph.svc.scheduler.cleanup"
)

// SchedulerStatus describes the scheduler's settings and its runs. Durations
// are given twice: as Go duration strings ("1m0s") and in seconds.
type SchedulerStatus struct {
	Interval           string  `json:"interval"`
	IntervalSeconds    float64 `json:"interval_seconds"`
	ApprovalTTL        string  `json:"approval_ttl"`
	ApprovalTTLSeconds float64 `json:"approval_ttl_seconds"`
	// Retention of finished job records; "0s" and 0 when they are kept
	// forever.
	Retention        string  `json:"retention"`
	RetentionSeconds float64 `json:"retention_seconds"`
	// LastRunAt is absent before the first run.
	LastRunAt time.Time `json:"last_run_at,omitzero"`
	NextRunAt time.Time `json:"next_run_at"`
	// LastExpired and LastPurged count the jobs the last run expired and
	// purged.
	LastExpired int `json:"last_expired"`
	LastPurged  int `json:"last_purged"`
	// Runs counts the runs since the replica started, scheduled or asked
	// for through SchedulerCleanupSubject (dry runs excluded).
	Runs int `json:"runs"`
	// Running is true while a run is in progress.
	Running bool `json:"running"`
}

// SchedulerCleanupRequest asks for expiry and retention to run now. A dry
// run reports what would be expired and purged without changing anything.
type SchedulerCleanupRequest struct {
	DryRun bool `json:"dry_run,omitempty"`
}

// SchedulerCleanupReply reports a cleanup run: the jobs expired (job.expired
// published) and the job records purged, or with DryRun, those that would
// be. The id lists are never null.
type SchedulerCleanupReply struct {
	Expired       int      `json:"expired"`
	Purged        int      `json:"purged"`
	JobIDsExpired []string `json:"job_ids_expired"`
	JobIDsPurged  []string `json:"job_ids_purged"`
}
