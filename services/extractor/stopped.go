package extractor

import "sync"

// stoppedJobs remembers the jobs seen stopped, at most max of them; the
// oldest is forgotten first, and a forgotten job is read again, which
// costs a read and is still right.
type stoppedJobs struct {
	mu    sync.Mutex
	max   int
	ids   map[string]struct{}
	order []string // the ids in the order added, a ring once full
	next  int      // where the ring's next id goes, replacing the oldest
}

func newStoppedJobs(maxJobs int) *stoppedJobs {
	return &stoppedJobs{max: maxJobs, ids: make(map[string]struct{}, maxJobs)}
}

func (s *stoppedJobs) has(jobID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[jobID]
	return ok
}

func (s *stoppedJobs) add(jobID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[jobID]; ok {
		return
	}
	s.ids[jobID] = struct{}{}
	if len(s.order) < s.max {
		s.order = append(s.order, jobID)
		return
	}
	delete(s.ids, s.order[s.next])
	s.order[s.next] = jobID
	s.next = (s.next + 1) % s.max
}
