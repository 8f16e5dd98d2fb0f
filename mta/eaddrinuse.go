package mta

import "syscall"

const syscallEADDRINUSE = syscall.EADDRINUSE
