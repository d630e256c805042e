package devstack

import "fmt"

// ComponentError names the component that failed and where its log is, so
// that a failed bring-up says where to look.
type ComponentError struct {
	Component string
	LogFile   string
	Err       error
}

func (e *ComponentError) Error() string {
	if e.LogFile == "" {
		return fmt.Sprintf("%s: %v", e.Component, e.Err)
	}
	return fmt.Sprintf("%s: %v (log: %s)", e.Component, e.Err, e.LogFile)
}

func (e *ComponentError) Unwrap() error { return e.Err }

func componentErr(component, logFile string, err error) error {
	if err == nil {
		return nil
	}
	return &ComponentError{Component: component, LogFile: logFile, Err: err}
}
