// CUDA runtime helpers: device queries and the error check used after every call.
#pragma once
#include <string>

namespace ember::cuda {

int device_count();               // 0, not an error, without a driver or device
std::string device_count_error(); // why device_count() is 0 ('' if it is not)
std::string device_name(int device);
void synchronize();
int runtime_version();

}  // namespace ember::cuda
