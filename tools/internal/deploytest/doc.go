// Package deploytest holds tests, and nothing else, that read the deployment
// files (deploy/, the root Dockerfile, staticcheck.conf) and fail when a
// property the platform relies on goes missing: health checks, probes,
// resources, non-root users, secrets by reference, backlog autoscaling,
// JetStream durability.
package deploytest
