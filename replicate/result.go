package replicate

import "time"

// Result describes one save, as POST /v1/saves returns it. For a save that
// found nothing changed, Unchanged is set and ID/Time name the previous save
// (empty for a new session that was never saved and never changed).
type Result struct {
	ID             string    `json:"id"`
	Time           time.Time `json:"time"`
	Reason         string    `json:"reason"`
	NodeCount      int       `json:"node_count"`
	BytesTotal     int64     `json:"bytes_total"`
	BytesUploaded  int64     `json:"bytes_uploaded"`
	ChunksTotal    int       `json:"chunks_total"`
	ChunksUploaded int       `json:"chunks_uploaded"`
	DurationMS     int64     `json:"duration_ms"`
	Unchanged      bool      `json:"unchanged"`
}

// SaveSummary is one save as `pitr saves --json` and GET /v1/saves list it.
type SaveSummary struct {
	ID            string    `json:"id"`
	Time          time.Time `json:"time"`
	Reason        string    `json:"reason"`
	Initialized   bool      `json:"initialized"`
	NodeCount     int       `json:"node_count"`
	BytesTotal    int64     `json:"bytes_total"`
	BytesUploaded int64     `json:"bytes_uploaded"`
}

// Status is what GET /v1/session reports about saving.
type Status struct {
	LastSave  *Result // nil before the first save this process knows of
	LastError string  // "" when the last attempt succeeded
	// UnsavedSince is when the oldest change not yet in a committed save
	// was made (nil: everything is saved).
	UnsavedSince *time.Time
	// SavingSince is when the save running now started (nil: none runs).
	SavingSince *time.Time
	// LocalError is the last failure to write the local data dir ("" when
	// the last write worked); saves go on to the store regardless.
	LocalError string
	// Warning says that the running save has taken longer than
	// Config.SlowSave ("" otherwise).
	Warning string
}
