#include <iostream>

#include "greet.h"

int main() {
  if (Greet("test") != "Hello, test!") {
    std::cerr << "unexpected greeting: " << Greet("test") << std::endl;
    return 1;
  }
  return 0;
}
