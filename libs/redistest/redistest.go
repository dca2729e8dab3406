// Package redistest gives tests a Redis server: the one named by REDIS_URL,
// or a redis-server child process of the test.
//
// A missing redis-server fails the test rather than skipping it, so a CI
// machine without Redis cannot pass by testing nothing; KG_SKIP_REDIS=1 opts
// out explicitly.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// URLEnv names an external server to test against instead of a child
	// process. Its URL must select a database (redis://host:port/N), which
	// Run flushes.
	URLEnv = "REDIS_URL"
	// SkipEnv set to 1 skips the Redis tests when no server is available.
	SkipEnv = "KG_SKIP_REDIS"

	binary = "redis-server"
	// readyTimeout bounds the wait for a fresh server to answer PING; a
	// loaded CI machine can take a while.
	readyTimeout = 10 * time.Second
	stopTimeout  = 10 * time.Second
	// startAttempts covers losing the free port to another process between
	// picking it and redis-server binding it.
	startAttempts = 3
)

// Run returns the URL of an empty Redis database for t: REDIS_URL's database,
// flushed, if set, or else a new redis-server child process that is stopped
// when t ends.
func Run(t testing.TB) string {
	t.Helper()
	if raw := os.Getenv(URLEnv); raw != "" {
		return flushExternal(t, raw)
	}
	return Start(t).URL()
}

// Server is a redis-server child process without persistence, listening on
// a fixed loopback port so that it can be stopped and started again at the
// same address.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	// exited is closed once cmd has been waited for.
	exited chan struct{}
}

// Start starts a redis-server child process even when REDIS_URL is set, for
// tests that need to stop the server. It is stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath(binary)
	if err != nil {
		if os.Getenv(SkipEnv) == "1" {
			t.Skipf("%s not found and %s=1: skipping Redis test", binary, SkipEnv)
		}
		t.Fatalf("%s not found in PATH (%v): install it (Debian/Ubuntu: apt-get install -y redis-server), "+
			"or point %s at a server (redis://host:port/N, database N is flushed), "+
			"or set %s=1 to skip the Redis tests", binary, err, URLEnv, SkipEnv)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stop redis-server: %v", err)
		}
	})
	var lastErr error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("pick a port for redis-server: %v", err)
		}
		s.port = port
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return nil
}

// URL is the server's address as a redis:// URL of database 0.
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Addr is the server's host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop shuts the server down; its data is lost, as it has no persistence.
func (s *Server) Stop() {
	s.t.Helper()
	if err := s.stop(); err != nil {
		s.t.Fatalf("stop redis-server: %v", err)
	}
}

// Pause freezes the server with SIGSTOP: it keeps accepting connections in
// the kernel but answers nothing, like a server that hangs.
func (s *Server) Pause() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
}

// Resume undoes Pause.
func (s *Server) Resume() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatalf("signal redis-server with %v: it is not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal redis-server pid %d with %v: %v", s.cmd.Process.Pid, sig, err)
	}
}

// Restart starts a stopped server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("restart redis-server: it is still running")
	}
	// The port was free a moment ago; retry briefly in case the old socket
	// is still being released.
	var err error
	for range startAttempts {
		if err = s.start(); err == nil {
			return
		}
	}
	s.t.Fatalf("restart redis-server on port %d: %v", s.port, err)
}

func (s *Server) start() error {
	logPath := filepath.Join(s.dir, "redis.log")
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", logPath,
	)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		// Wait's error is the exit status, which a SIGTERM makes non-nil.
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	if err := waitReady(s.Addr(), exited); err != nil {
		stopErr := s.stop()
		return errors.Join(fmt.Errorf("%w; log:\n%s", err, tail(logPath)), stopErr)
	}
	return nil
}

func (s *Server) stop() error {
	if s.cmd == nil {
		return nil
	}
	defer func() { s.cmd, s.exited = nil, nil }()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal pid %d: %w", s.cmd.Process.Pid, err)
	}
	// A paused server handles SIGTERM only once it runs again.
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal pid %d: %w", s.cmd.Process.Pid, err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill pid %d: %w", s.cmd.Process.Pid, err)
	}
	<-s.exited
	return fmt.Errorf("pid %d ignored SIGTERM for %s and was killed", s.cmd.Process.Pid, stopTimeout)
}

// waitReady polls addr with PING until it answers PONG, the process exits or
// readyTimeout passes.
func waitReady(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("redis-server exited during startup")
		default:
		}
		if lastErr = ping(addr); lastErr == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no PONG from %s after %s: %w", addr, readyTimeout, lastErr)
}

// ping speaks just enough RESP to check readiness without a client pool.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// flushExternal empties the database REDIS_URL names. It insists on an
// explicit database so that a bare URL cannot wipe a server's default
// database by accident.
func flushExternal(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse %s: %v", URLEnv, err)
	}
	if strings.Trim(u.Path, "/") == "" {
		t.Fatalf("%s=%s names no database; use redis://host:port/N with a database N that tests may flush", URLEnv, u.Redacted())
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatalf("parse %s: %v", URLEnv, err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := client.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("flush database %d of %s: %v", opts.DB, u.Redacted(), err)
	}
	return raw
}

// tail returns the end of the server log for a startup failure message.
func tail(path string) string {
	const maxLog = 2000
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(data) > maxLog {
		data = data[len(data)-maxLog:]
	}
	return string(data)
}
