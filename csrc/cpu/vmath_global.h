// vmath at namespace scope, compiled once for the default target, for code that calls
// it from functors defined outside the ISA regions. Code inside an ISA region includes
// vmath.h there instead (see elementwise_loops.h) to get a copy compiled for that ISA.
#pragma once
#include <cmath>
#include <cstdint>
#include "vmath.h"
