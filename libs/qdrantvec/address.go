package qdrantvec

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// address is the Qdrant gRPC endpoint a Config.URL names.
type address struct {
	host string
	port int
	tls  bool
}

// parseAddress accepts "http://host[:port]", "https://host[:port]" and
// "host[:port]"; the port defaults to Qdrant's gRPC port.
func parseAddress(raw string) (address, error) {
	if raw == "" {
		return address{}, errors.New("qdrant URL is empty")
	}
	withScheme := raw
	if !strings.Contains(raw, "://") {
		withScheme = "http://" + raw
	}
	u, err := url.Parse(withScheme)
	if err != nil {
		return address{}, fmt.Errorf("qdrant URL %q: %w", raw, err)
	}
	var a address
	switch u.Scheme {
	case "http":
	case "https":
		a.tls = true
	default:
		return address{}, fmt.Errorf("qdrant URL %q: scheme %q, want http or https", raw, u.Scheme)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return address{}, fmt.Errorf("qdrant URL %q: want only a host and port", raw)
	}
	a.host = u.Hostname()
	if a.host == "" {
		return address{}, fmt.Errorf("qdrant URL %q: no host", raw)
	}
	// The client joins host and port with a bare colon, so an IPv6 literal
	// needs its brackets back.
	if strings.Contains(a.host, ":") {
		a.host = "[" + a.host + "]"
	}
	a.port = defaultPort
	if p := u.Port(); p != "" {
		a.port, err = strconv.Atoi(p)
		if err != nil || a.port < 1 || a.port > 65535 {
			return address{}, fmt.Errorf("qdrant URL %q: invalid port %q", raw, p)
		}
	}
	return a, nil
}
