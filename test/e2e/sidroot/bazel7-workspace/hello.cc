#include <iostream>

#include "greet.h"

int main() {
  std::cout << Greet("Granary") << std::endl;
  return 0;
}
