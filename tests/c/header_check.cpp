// The same header check as C++11 (see header_check.c): the header must compile without
// warnings under -std=c++11 -Wall -Wextra -Werror -pedantic and give every function C linkage.
#include "header_check.c"
