package backends

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/neo4j/neo4j-go-driver/v6/neo4j"
)

// IsUnavailable reports whether err means a backend could not be reached
// (refused or dropped connections, a driver's connectivity error, a
// transaction that exhausted its retries against an unreachable cluster)
// rather than a problem with the data. The bus retries such failures for as
// long as the outage lasts instead of dead-lettering the event.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &opErr), errors.As(err, &dnsErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, context.DeadlineExceeded),
		neo4j.IsConnectivityError(err), neo4j.IsTransactionExecutionLimit(err):
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "i/o timeout", "no such host",
		"database is locked", "ServiceUnavailable", "server is shutting down"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
