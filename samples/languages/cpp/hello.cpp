// SPDX-License-Identifier: GPL-2.0
#include <iostream>

int main()
{
	std::cout << "Hello, world!" << std::endl;
	return 0;
}
