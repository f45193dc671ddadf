"""Activities and History panels on the detail page of any module that opts in."""
