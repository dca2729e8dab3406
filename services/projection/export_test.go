package projection

import "time"

// SetClock replaces the service's clock; call it before Run.
func SetClock(s *Service, now func() time.Time) { s.now = now }
