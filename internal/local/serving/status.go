package serving

// ServiceStatus is what clima dev reports of one Service.
type ServiceStatus struct {
	URL string `json:"url"`
	// PIDs are its running processes, those draining after a scale-down too.
	PIDs []int `json:"pids"`
	// Ready counts the replicas that serve; Desired is the autoscaler's
	// latest decision.
	Ready    int   `json:"ready"`
	Desired  int32 `json:"desired"`
	Draining int   `json:"draining"`
	// InFlight counts requests in flight or waiting for a replica.
	InFlight    int     `json:"in_flight"`
	Starts      int     `json:"starts"`
	Exits       int     `json:"exits"`
	ColdStartMs float64 `json:"cold_start_ms"`
	// Autoscaler is the KPA's latest tick.
	Autoscaler *Decision `json:"autoscaler,omitempty"`
	// Profiles are the pprof URLs of its processes (clima dev -debug).
	Profiles []string `json:"profiles,omitempty"`
}

// Status is what the Service runs and decided, now.
func (s *Service) Status() ServiceStatus {
	var last *Decision
	if s.scaler != nil {
		if h := s.scaler.history(); len(h) > 0 {
			last = &h[len(h)-1]
		}
	}
	s.load.mu.Lock()
	inFlight := s.load.inFlight
	s.load.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := ServiceStatus{URL: s.url, Ready: len(s.ready), Desired: s.desired, Draining: len(s.draining), InFlight: inFlight,
		Starts: s.starts, Exits: s.exits, ColdStartMs: float64(s.coldStart.Microseconds()) / 1000, PIDs: []int{}, Autoscaler: last}
	for _, p := range s.ready {
		st.PIDs = append(st.PIDs, p.cmd.Process.Pid)
		if p.debugAddr != "" {
			st.Profiles = append(st.Profiles, "http://"+p.debugAddr+"/debug/pprof/")
		}
	}
	for p := range s.draining {
		st.PIDs = append(st.PIDs, p.cmd.Process.Pid)
	}
	return st
}
