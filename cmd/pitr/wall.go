package main

import "github.com/pitr-dev/pitr/clock"

// wall is the clock of the commands: the wall clock, chosen here once and
// handed to the packages that take a clock.
var wall = clock.Real()
